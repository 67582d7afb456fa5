"""gunicorn settings the app needs whatever the deployment (`-c python:cache_app.gunicorn_conf`)."""

from cache_app.config import REQUEST_LINE_LIMIT

# Threaded workers whose own error answers (bad request line, headers over the limits...) are
# JSON like the app's. Set here, not on the command line, so that no deployment forgets it.
worker_class = "cache_app.gunicorn_worker.JsonErrorThreadWorker"

# The longest request line; the longest key the app accepts fits in it (config.py).
limit_request_line = REQUEST_LINE_LIMIT

# No proxy in front: no peer may set the scheme, SCRIPT_NAME or PATH_INFO through headers (by
# default loopback peers may, and a SCRIPT_NAME that does not prefix the path is a 500).
forwarded_allow_ips = ""

# gunicorn's runtime control socket is not used; without it nothing is written to the home folder,
# which the unit keeps read-only.
control_socket_disable = True
