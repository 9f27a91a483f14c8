"""The application layer: one typed request and one job function per user action.

Both faces call these and nothing below them for work: the CLI turns argv into a request, runs
the job with a progress bar and prints the result's ``describe()``; the editor turns a dialog into
the same request, runs the job in a worker thread and shows the same text (an edit, such as a
dub, is pushed on its undo stack instead of being saved).

    track    TrackRequest  -> track_job   -> TrackResult
    adapt    AdaptRequest  -> adapt_job   -> AdaptResult    (prior: PriorRequest -> prior_job)
    dub      DubRequest    -> dub_job     -> DubOutcome     (the edit, not saved: apply_dub saves)
    export   ExportRequest -> export_job  -> ExportResult
    render   RenderRequest -> render_job  -> RenderResult   (eval: EvalRequest -> eval_job)
    run      RunRequest    -> run_job     -> RunResult      (track, adapt, dub, export)
    batch    read_shot_list + BatchRequest -> batch_job -> BatchResult

Every job takes a ``core.jobs.Progress`` (progress callback + cancel token). The renderer choice
(``app.renderer``) and the device choice (``app.device``) are written once here.
"""
