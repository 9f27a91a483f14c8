"""DubStudio: visual dubbing of filmed actors (library core; the GUI lives in dubstudio.gui)."""

__version__ = "0.1.0"
