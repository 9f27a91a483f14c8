"""The shot's one home: what every stage reads about a shot, owned here.

A shot's project (``project.store``) holds the tracker's result, the user's edits and the stage
records. What the stages need is derived state, and each piece is defined once here:

- ``tracking``: the tracking with the editor's saved corrections applied (and its cache key);
- ``curves``: the edited and driven control curves over it, and the final controls to render;
- ``dub_audio``: which audio the driven mouth belongs to (what export muxes by default);
- ``adaptation``: the actor file of a shot's adaptation.

``Shot`` (``shot.state``) bundles them for one project and caches what it has read.
"""

from dubstudio.shot.state import Shot

__all__ = ["Shot"]
