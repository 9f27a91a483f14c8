"""Another shot of the same actor: the actor file to start an adaptation from, and whether that
shot's tracked face is this one's (``trainer.adapt(start_from=...)``, `--from-shot`, the editor's
From shot; docs/decisions.md, eleventh session)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any


from dubstudio.shot.adaptation import shot_name
from dubstudio.core.errors import ProjectError
from dubstudio.project.store import Project
from dubstudio.nn import checkpoint as ckpt
from dubstudio.shot.tracking import tracking_of

log = logging.getLogger(__name__)

# above this ``shape_distance`` between another shot's tracked face and this one, starting from that
# shot is flagged as maybe another person (one person across shots: 0.005-0.011, two people >= 0.036)
SAME_ACTOR_MAX_DISTANCE = 0.025


def other_actor_warning(start_from: str | Path, project: Project) -> str | None:
    """Before a run: the warning ``adapt(start_from=...)`` would give (None when the shots look like
    one person, or when the actor file predates stored identities)."""
    return same_actor_warning(ckpt.load(start_from, "actor"), start_from, tracking_of(project)[0])


def same_actor_warning(src: dict[str, Any], start_from: str | Path, tracking) -> str | None:
    """A warning when the other shot's tracked face shape is as far from this one as two people's."""
    from dubstudio.tracking.fitting import shape_distance

    ident = src.get("identity")
    if ident is None:  # an actor file from before identities were stored: nothing to compare
        return None
    d = shape_distance(tracking.identity, ident.cpu().numpy())
    if d <= SAME_ACTOR_MAX_DISTANCE:
        return None
    msg = (f"the face tracked in {shot_name(start_from)} differs from this shot's by {d:.3f}, as much as two "
           f"different people's do (the same actor in another shot: about 0.01); check that it is the same actor.")
    log.warning(msg)
    return msg


def start_source(path: str | Path) -> dict[str, Any]:
    """An actor checkpoint to start from, its prior checked when it needs one."""
    src = ckpt.load(path, "actor")
    if src["generator"] is None:
        p = src.get("prior") or {}
        if not p.get("path") or not Path(p["path"]).is_file():
            raise ProjectError(f"{path} was adapted in texture mode to the prior {p.get('path')}, which is missing; "
                               f"put it back or start from a full adaptation of that shot.")
        if ckpt.fingerprint(p["path"]) != p["fingerprint"]:
            raise ProjectError(f"the prior {p['path']} has changed since {path} was adapted; adapt that shot again.")
    return src
