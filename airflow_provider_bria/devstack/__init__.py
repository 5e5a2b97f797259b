"""A distributed Airflow on one machine: CeleryExecutor, PostgreSQL, Redis, S3 (moto), two workers.

Used by ``make celery`` (``python -m airflow_provider_bria.devstack``) and by the tests in ``tests/celery``:

* :mod:`~airflow_provider_bria.devstack.services`: throw-away PostgreSQL, Redis and S3 servers on free loopback
  ports (Debian packages installed by ``apt-get`` when missing; moto from the lock);
* :mod:`~airflow_provider_bria.devstack.celery_stack`: Airflow's scheduler, dag-processor, triggerer, API server
  and N Celery workers over them, each component in its own folder, stopped by PID.

Nothing here is imported by the provider itself; it needs the ``dev`` extra (Celery and Amazon providers,
psycopg2, moto).
"""
