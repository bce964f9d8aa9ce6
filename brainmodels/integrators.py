"""Explicit one-step ODE integrators shared by every model family (one registry).

Each :class:`Integrator` carries its step and its global order of accuracy, as diffrax's
solvers do, so convergence tests and the models read the same table. A step advances
``dy/dt = f(y, t)`` by ``dt`` for ``y`` any pytree of arrays (a phase vector, a tuple of
membrane and adaptation variables):

    y_next = integrator.step(f, y, t, dt)

The arithmetic is written once here, in the order the models always used (``y + (dt/6) *
(k1 + 2 k2 + 2 k3 + k4)`` for RK4), so moving a model onto the registry changes no result.

References
----------
Hairer, Norsett & Wanner (1993), Solving Ordinary Differential Equations I, sec. II.1
(Euler, Heun and the explicit midpoint rule; the classical Runge-Kutta method of order 4).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

__all__ = ["Integrator", "INTEGRATORS", "get_integrator"]

Field = Callable[[Any, Any], Any]  # f(y, t) -> dy/dt, same pytree structure as y


def _axpy(y, k, h):
    return jax.tree.map(lambda a, b: a + h * b, y, k)


def _euler(f: Field, y, t, dt):
    return _axpy(y, f(y, t), dt)


def _heun(f: Field, y, t, dt):
    k1 = f(y, t)
    k2 = f(_axpy(y, k1, dt), t + dt)
    return jax.tree.map(lambda a, b, c: a + 0.5 * dt * (b + c), y, k1, k2)


def _midpoint(f: Field, y, t, dt):  # brian2's 'rk2'
    k1 = f(y, t)
    return _axpy(y, f(_axpy(y, k1, 0.5 * dt), t + 0.5 * dt), dt)


def _rk4(f: Field, y, t, dt):
    half = 0.5 * dt
    k1 = f(y, t)
    k2 = f(_axpy(y, k1, half), t + half)
    k3 = f(_axpy(y, k2, half), t + half)
    k4 = f(_axpy(y, k3, dt), t + dt)
    return jax.tree.map(lambda a, b, c, d, e: a + (dt / 6.0) * (b + 2.0 * c + 2.0 * d + e),
                        y, k1, k2, k3, k4)


class Integrator(NamedTuple):
    """An explicit one-step method: ``step(f, y, t, dt) -> y_next`` and its global order."""

    name: str
    step: Callable
    order: int


#: name -> :class:`Integrator`. ``rk2`` is the explicit midpoint rule (brian2's ``rk2``),
#: ``heun`` the explicit trapezoidal rule; both are of order 2.
INTEGRATORS: dict[str, Integrator] = {
    i.name: i for i in (Integrator("euler", _euler, 1), Integrator("heun", _heun, 2),
                        Integrator("rk2", _midpoint, 2), Integrator("rk4", _rk4, 4))
}


def get_integrator(name: str, *, allowed: tuple[str, ...] | None = None,
                   argument: str = "method") -> Integrator:
    """The registry entry ``name``; a clear error naming ``argument`` otherwise.

    ``allowed`` restricts the choice (a model may offer a subset).
    """
    choices = sorted(allowed if allowed is not None else INTEGRATORS)
    if name not in choices:
        raise ValueError(f"{argument} must be one of {choices}, got {name!r}")
    return INTEGRATORS[name]
