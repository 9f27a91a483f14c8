"""dubstudio.export: the final render of a shot, muxed with the dubbed audio and marked as synthetic.

- ``job``:         ``export_shot(project, renderer, out, settings, progress)`` (streams the render
                   pipeline into a sink) and ``ExportSettings``.
- ``audio_track``: which audio (dubbed / given / the shot's own / none), offset, length policy.
- ``formats``:     mp4 (H.264 + AAC), mov (ProRes 422 + PCM), png (sequence + WAV).
- ``writers``:     the atomic video and PNG-folder sinks.
- ``review``:      side-by-side original | dubbed frames.
- ``mark``:        container/PNG metadata and the invisible watermark with its detector.
- ``verify``:      ffprobe-based checks of an export.
"""
