"""Decision studies, study runners and reports, and the soak test: what a run finds or whether it holds
(``python -m bench.studies.<script>``)."""
