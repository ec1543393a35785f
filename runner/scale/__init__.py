"""Past one machine: shards merged into one run, and shards run as Ray tasks."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner.scale._merge import merge_shards
    from runner.scale._ray import RayOptions, run_on_ray

# Names load on first use: the door costs nothing until a name is taken through it.
_EXPORTS = {
    "RayOptions": "runner.scale._ray",
    "merge_shards": "runner.scale._merge",
    "run_on_ray": "runner.scale._ray",
}


if not TYPE_CHECKING:  # type checkers see the names imported above, nothing else
    from runner import door_getattr

    __getattr__ = door_getattr(__name__, _EXPORTS)


__all__ = [
    "RayOptions",
    "merge_shards",
    "run_on_ray",
]
