"""From an editor's cut to dubbing shots and back: read a cut (``cut``), cut its shots out of the
source media (``shots``), point the cut at the dubbed exports (``relink``)."""
