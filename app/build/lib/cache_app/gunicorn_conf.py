"""gunicorn settings the app needs whatever the deployment (`-c python:cache_app.gunicorn_conf`)."""

from prometheus_client import multiprocess


def child_exit(server, worker) -> None:
    # Drop a dead worker's live gauges so /metrics stays correct across workers.
    multiprocess.mark_process_dead(worker.pid)
