"""hooks of the Bria provider."""

#: The Airflow connection id every Bria hook, operator, sensor, trigger and the UI plugin use by default.
#: Here, not in ``hooks.bria``, so that defining a task does not import the hook's HTTP stack.
DEFAULT_CONN_NAME = "bria_default"
