FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY slabuddy slabuddy
COPY tickets tickets
COPY escalation escalation
COPY calendars calendars
COPY manage.py ./
RUN pip install . && useradd --system --home /app slabuddy && mkdir /data && chown slabuddy /data
USER slabuddy
EXPOSE 8000
