# The GreenGauge image: the collector, flows and API all run from it with different commands.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY greengauge greengauge
COPY model model
COPY accounting accounting
COPY collectors collectors
COPY store store
COPY metrics metrics
COPY flows flows
COPY dashboards dashboards
COPY api api
RUN pip install --no-cache-dir . \
 && mkdir -p /var/lib/greengauge/spool && chown nobody /var/lib/greengauge/spool
ENV GREENGAUGE_WORKDIR=/var/lib/greengauge
USER nobody
ENTRYPOINT ["greengauge"]
