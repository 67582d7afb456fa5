"""gunicorn settings the app needs whatever the deployment (`-c python:cache_app.gunicorn_conf`)."""

from prometheus_client import multiprocess

# gunicorn's runtime control socket is not used; without it nothing is written to the home folder,
# which the unit keeps read-only.
control_socket_disable = True


def child_exit(server, worker) -> None:
    # Drop a dead worker's live gauges so /metrics stays correct across workers.
    multiprocess.mark_process_dead(worker.pid)
