"""Render-farm jobs: a shot list as an Open Job Description job bundle (``openjd``)."""
