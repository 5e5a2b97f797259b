"""hooks of the Bria provider."""

#: The Airflow connection id every Bria hook, operator, sensor, trigger and the UI plugin use by default. Defined in
#: ``contract`` (the operators' base class takes it from there, so that defining a task imports neither this package
#: nor the hook's HTTP stack).
from airflow_provider_bria.contract import DEFAULT_CONN_NAME as DEFAULT_CONN_NAME
