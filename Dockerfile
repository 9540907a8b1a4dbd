# The charter image: Airflow 3.3.2 with the pinned dependencies and the project installed.
# No secret is baked in: keys, passwords and tokens come from the environment or Docker secrets
# at run time (see docker-compose.yaml and docs/deployment.md).
#
#   docker build -t charter-airflow:latest .
#
# The tag's Airflow version must equal the apache-airflow pin of requirements.txt
# (tests/deploy/test_compose.py checks it); python3.11 matches the venv the pins were resolved on.
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}

ENV CHARTER_SRC=/opt/charter \
    CHARTER_HOME=/opt/charter/state \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/charter/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/charter/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    HF_HUB_OFFLINE=1 \
    TLDEXTRACT_CACHE=/opt/charter/state/tldextract \
    CODECARBON_LOG_LEVEL=error

USER root
# State folders exist in the image, owned by the airflow user, so that new named volumes mounted
# on them inherit that ownership (Docker copies it on first mount).
RUN mkdir -p /opt/charter/state/data /opt/charter/state/reports /opt/charter/state/keys /opt/charter/state/audit \
             /opt/charter/state/models /opt/charter/state/profiles /opt/charter/state/work /opt/charter/state/tldextract \
    && chmod 700 /opt/charter/state/keys \
    && chown -R airflow:0 /opt/charter
USER airflow

# Dependencies first: this layer is rebuilt only when the pins change.
# apache-airflow==3.3.2 is already in the base image; pip keeps it.
COPY --chown=airflow:0 requirements.txt /opt/charter/requirements.txt
RUN pip install --no-cache-dir -r /opt/charter/requirements.txt

COPY --chown=airflow:0 pyproject.toml README.md /opt/charter/
COPY --chown=airflow:0 include /opt/charter/include
COPY --chown=airflow:0 plugins /opt/charter/plugins
COPY --chown=airflow:0 dags /opt/charter/dags
COPY --chown=airflow:0 expectations /opt/charter/expectations
COPY --chown=airflow:0 deploy/docker-entrypoint.sh deploy/airflow-init.sh /opt/charter/deploy/
RUN pip install --no-cache-dir --no-deps -e /opt/charter && pip check

WORKDIR /opt/airflow
ENTRYPOINT ["/usr/bin/dumb-init", "--", "/opt/charter/deploy/docker-entrypoint.sh"]
CMD []
