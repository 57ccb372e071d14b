"""Installed in every Ray worker of tests/test_fanout.py (Ray's ``worker_process_setup_hook``): the fake pipeline of
conftest.py in place of the models, so a Ray study can be checked line for line against the plain one in seconds."""

from __future__ import annotations


def install() -> None:
    """Make :meth:`izkit.pipeline.Pipeline.from_config` return conftest's fake pipeline in this process."""
    from conftest import make_fake_pipeline

    from izkit.pipeline import Pipeline

    Pipeline.from_config = classmethod(lambda cls, *args, **kwargs: make_fake_pipeline())
