"""What every assignment check is made of: the student's call, and the shape, value and gradient tests with hints.

Each helper either returns or raises :class:`CheckFailed` (an ``AssertionError``) with a message in plain words that
names the slip and what to change. Inputs are float64 torch tensors drawn from seeded generators.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from izkit.kernels import DTYPE


class CheckFailed(AssertionError):
    """A check found a mistake; the message says what is wrong and what to look at."""


def seeded(seed: int) -> torch.Generator:
    """A torch generator with this seed: every check draws the same inputs every time."""
    return torch.Generator().manual_seed(seed)


def call(fn: Callable[..., Any], name: str, signature: str, *args: Any) -> Any:
    """Call the student's function; turn a stub or a crash into a message that says so."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise CheckFailed(
            f"`{name}` is not implemented yet (it still raises NotImplementedError). Replace the "
            f"`raise NotImplementedError` line with your code, run that cell, then run this check again."
        ) from None
    except Exception as err:  # noqa: BLE001 - any crash becomes a hint
        raise CheckFailed(f"`{name}` raised {type(err).__name__}: {err}\n  It was called as {signature}.") from err


def as_tensor(out: Any, name: str) -> Tensor:
    """The student's result as a float64 tensor, or a message saying what came back instead."""
    if out is None:
        raise CheckFailed(f"`{name}` returned None: did you forget the `return` statement?")
    if isinstance(out, tuple):
        raise CheckFailed(f"`{name}` returned a tuple of {len(out)} things; it should return one tensor")
    try:
        return torch.as_tensor(out).to(DTYPE)
    except Exception as err:  # noqa: BLE001
        raise CheckFailed(f"`{name}` returned a {type(out).__name__}, which is not a tensor or an array") from err


def expect_shape(out: Tensor, expected: tuple[int, ...], name: str, what: str) -> None:
    """Demand the expected shape; name the usual mix-ups (transposed, an extra axis, a sum too many)."""
    got = tuple(out.shape)
    if got == expected:
        return
    hint = ""
    if len(expected) == 2 and got == expected[::-1]:
        hint = " It is transposed: rows should follow the first argument (X1), columns the second (X2)."
    elif len(expected) == 1 and got in ((expected[0], 1), (1, expected[0])):
        hint = " Return a flat vector: drop the extra dimension (e.g. `.squeeze(-1)`, or sum over the right axis)."
    elif len(got) == 0:
        hint = " You returned a single number: did you sum or average over the points by mistake?"
    raise CheckFailed(f"`{name}` returned shape {got} for {what}; expected {expected}.{hint}")


def expect_finite(out: Tensor, name: str, where: str, hint: str) -> None:
    """Demand no NaN or inf; the message says where and what to change."""
    if not bool(torch.isfinite(out).all()):
        bad = "NaN" if bool(torch.isnan(out).any()) else "inf"
        raise CheckFailed(f"`{name}` gave {bad} {where}. {hint}")


def close(a: Tensor, b: Tensor, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    """Same shape and the same values within tolerance."""
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=rtol, atol=atol))


def constant_factor(got: Tensor, ref: Tensor) -> float | None:
    """The c with got = c * ref, when there is one (and it is not 1)."""
    mask = ref.abs() > 1e-6
    if not bool(mask.any()):
        return None
    ratio = got[mask] / ref[mask]
    c = float(ratio.mean())
    if bool(torch.allclose(ratio, torch.full_like(ratio, c), rtol=1e-5, atol=1e-8)) and abs(c - 1.0) > 1e-6:
        return c
    return None


def worst(got: Tensor, ref: Tensor) -> str:
    """Where the student's result is furthest from the reference, in words."""
    i = int((got - ref).abs().flatten().argmax())
    return f"the largest difference is at entry {i}: yours {float(got.flatten()[i]):.6g}, expected " \
           f"{float(ref.flatten()[i]):.6g}"


def success(name: str, n: int, covered: str) -> None:
    """The one line a passing check prints (the only output of a check)."""
    print(f"✓ {name}: all {n} checks passed ({covered}).")


def expect_finite_gradient(fn: Callable[..., Any], name: str, signature: str,
                           make_args: Callable[[Tensor], tuple], x: Tensor, where: str, hint: str) -> None:
    """Differentiate sum(fn(*make_args(x))) with respect to x; demand a graph and a finite gradient."""
    x = x.clone().requires_grad_(True)
    out = call(fn, name, signature, *make_args(x))
    if not isinstance(out, Tensor) or not out.requires_grad:
        raise CheckFailed(
            f"`{name}` breaks the autograd graph: its output does not depend on its input through torch operations "
            "(did you convert to numpy or call `.item()`/`.detach()`?). Use torch functions throughout, so that "
            "L-BFGS-B can get gradients."
        )
    (g,) = torch.autograd.grad(out.sum(), x, allow_unused=True)
    if g is None:
        raise CheckFailed(f"`{name}`'s output does not depend on its input {where}")
    expect_finite(g, name, f"in its gradient {where}", hint)


# ------------------------------------------------------------------------------------- izkit's own answer key


def _izkit_module(obj: Any) -> str | None:
    """The izkit module an object comes from (a module, function or class), or None."""
    import types

    name = obj.__name__ if isinstance(obj, types.ModuleType) else getattr(obj, "__module__", None)
    if isinstance(name, str) and (name == "izkit" or name.startswith("izkit.")) and not name.startswith("izkit.course.checks"):
        return name
    return None


def izkit_inside(fn: Any, modules: tuple[str, ...], _seen: set[int] | None = None) -> str | None:
    """Where ``fn`` uses izkit's own implementation from one of ``modules`` (e.g. ``("izkit.kernels",)``): the
    module or function it reaches, else None.

    It looks at ``fn`` itself, then at every global name, closure cell and default its code (nested functions
    included) refers to, and follows the student's own functions it calls, so a helper that wraps
    ``izkit.kernels.matern52`` is found too. A heuristic (``eval`` or ``getattr`` tricks escape it), meant to stop the
    honest shortcut of importing the answer, not a determined cheat.
    """
    import types

    seen = set() if _seen is None else _seen
    if id(fn) in seen:
        return None
    seen.add(id(fn))
    here = _izkit_module(fn)
    if here is not None:
        return f"{here}.{getattr(fn, '__qualname__', '')}".rstrip(".") if any(
            here == m or here.startswith(m + ".") for m in modules) else None
    fn = getattr(fn, "__func__", fn)  # a bound method: its function
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    names: set[str] = set()
    stack = [code]
    while stack:
        c = stack.pop()
        names.update(c.co_names)
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    for nm in names:  # an import inside the function: `from izkit.kernels import matern52` names the module
        if (nm == "izkit" or nm.startswith("izkit.")) and not nm.startswith("izkit.course.checks") and any(
                nm == m or nm.startswith(m + ".") or m.startswith(nm + ".") for m in modules):
            return nm
    g = getattr(fn, "__globals__", {})
    reached = [g[n] for n in names if n in g]
    reached += [cell.cell_contents for cell in (fn.__closure__ or ()) if _has_contents(cell)]
    reached += list(fn.__defaults__ or ()) + list((fn.__kwdefaults__ or {}).values())
    for obj in reached:
        found = None
        if isinstance(obj, types.ModuleType):
            mod = _izkit_module(obj)
            if mod is not None and any(mod == m or mod.startswith(m + ".") or m.startswith(mod + ".") for m in modules):
                found = mod
        elif callable(obj):
            found = izkit_inside(obj, modules, seen)
        if found:
            return found
    return None


def _has_contents(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # an empty closure cell
        return False
    return True


def refuse_izkit(fn: Any, name: str, modules: tuple[str, ...]) -> None:
    """Fail when the student's ``fn`` is, or calls, izkit's own implementation from ``modules``: the check compares
    with izkit, so izkit's function would pass without teaching anything."""
    found = izkit_inside(fn, modules)
    if found:
        raise CheckFailed(f"`{name}` uses izkit's own implementation ({found}): that is the answer key this check "
                          "compares with, so it proves nothing. Write it yourself with torch / numpy (and your own "
                          "functions from the earlier assignments).")
