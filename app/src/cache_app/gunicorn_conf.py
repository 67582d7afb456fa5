"""gunicorn settings the app needs whatever the deployment (`-c python:cache_app.gunicorn_conf`)."""

# gunicorn's runtime control socket is not used; without it nothing is written to the home folder,
# which the unit keeps read-only.
control_socket_disable = True
