"""The editor's models, Qt-free: the open shot (``session.ShotSession``), opening a shot and its
tracking (``shot``), the mesh the viewer draws (``mesh``) and the dubbed audio (``dub_audio``).

The Qt widgets and controllers in ``dubstudio.gui`` follow these models' psygnal events (napari's
``components`` / ``_qt`` split); an import-linter contract keeps Qt out of this package, so the
models are tested without a display.
"""
