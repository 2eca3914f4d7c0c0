FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 SLABUDDY_DATA_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY base base
COPY calendars calendars
COPY tickets tickets
COPY escalation escalation
COPY slackbot slackbot
COPY ops ops
COPY slabuddy slabuddy
COPY manage.py ./
RUN pip install . && useradd --system --home /app slabuddy && mkdir /data && chown slabuddy /data
USER slabuddy
VOLUME /data
EXPOSE 8000 5555
# docker-compose.yml gives each service its own command; this default is the web server. The two
# workers (ops/workers.py): `celery -A slabuddy worker -Q default -P prefork` and
# `celery -A slabuddy worker -Q escalation -P threads --concurrency 16`.
CMD ["gunicorn", "slabuddy.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
