# The charter image: Airflow 3.3.2 with the charter-guardrails wheel and its runtime dependencies only.
# No secret is baked in: keys, passwords and tokens come from the environment or Docker secrets
# at run time (see docker-compose.yaml and docs/deployment.md).
#
#   docker build -t charter-airflow:latest .
#
# Two stages: `build` makes the wheel from the sources; the final stage installs that wheel with the exact
# versions of requirements.txt as constraints, so the image holds the locked runtime dependencies and no
# development tool (no pytest, mypy, ruff, playwright, hypothesis, aiosmtpd: tests/deploy/test_compose.py).
# The tag's Airflow version must equal the apache-airflow pin of requirements.txt
# (tests/deploy/test_compose.py checks it); python3.11 matches the venv the pins were resolved on.
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_IMAGE} AS build

# Only the packages' sources: the wheel holds their code and own data (engagements, templates, locale), no
# policy, suite, reference or sample file.
COPY --chown=airflow:0 pyproject.toml README.md /tmp/charter-src/
COPY --chown=airflow:0 include/charter_guardrails /tmp/charter-src/include/charter_guardrails
COPY --chown=airflow:0 include/charter_demo /tmp/charter-src/include/charter_demo
COPY --chown=airflow:0 plugins/charter_airflow /tmp/charter-src/plugins/charter_airflow
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/charter-wheel /tmp/charter-src

FROM ${AIRFLOW_IMAGE}

# The configuration the package does not ship (policies, suites, reference distributions) lives in
# /opt/charter/config; the plugin and the provider come from the wheel's entry points, so there is no plugins
# folder; the DAGs folder holds the generic use-case DAG file and the service DAGs (alert relay, integrity
# monitor, partitioned scan).
ENV CHARTER_HOME=/opt/charter/state \
    CHARTER_POLICIES_DIR=/opt/charter/config/policies \
    CHARTER_EXPECTATIONS_DIR=/opt/charter/config/expectations \
    CHARTER_REFERENCE_DIR=/opt/charter/config/reference \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/charter/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    HF_HUB_OFFLINE=1 \
    TLDEXTRACT_CACHE=/opt/charter/state/tldextract \
    CODECARBON_LOG_LEVEL=error

USER root
# State folders exist in the image, owned by the airflow user, so that new named volumes mounted
# on them inherit that ownership (Docker copies it on first mount).
RUN mkdir -p /opt/charter/state/data /opt/charter/state/reports /opt/charter/state/keys /opt/charter/state/audit \
             /opt/charter/state/models /opt/charter/state/profiles /opt/charter/state/work /opt/charter/state/tldextract \
             /opt/charter/config \
    && chmod 700 /opt/charter/state/keys \
    && chown -R airflow:0 /opt/charter
USER airflow

# The wheel and its runtime dependencies (extras: the PDF, Celery workers, PostgreSQL, the sample data of
# CHARTER_GENERATE_SAMPLE_DATA, the FAB auth manager of the compose file), at the locked versions;
# apache-airflow==3.3.2 is already in the base image.
COPY --chown=airflow:0 requirements.txt /opt/charter/requirements.txt
COPY --from=build /tmp/charter-wheel /tmp/charter-wheel
RUN pip install --no-cache-dir "$(ls /tmp/charter-wheel/charter_guardrails-*.whl)[ui,celery,postgres,demo,fab,s3]" \
        -c /opt/charter/requirements.txt \
    && pip check

COPY --chown=airflow:0 include/policies /opt/charter/config/policies
COPY --chown=airflow:0 expectations /opt/charter/config/expectations
COPY --chown=airflow:0 include/reference /opt/charter/config/reference
COPY --chown=airflow:0 dags /opt/charter/dags
COPY --chown=airflow:0 deploy/docker-entrypoint.sh deploy/airflow-init.sh /opt/charter/deploy/

WORKDIR /opt/airflow
ENTRYPOINT ["/usr/bin/dumb-init", "--", "/opt/charter/deploy/docker-entrypoint.sh"]
CMD []
