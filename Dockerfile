# policy_push container image: one image, two process kinds (`serve`, `worker`); see docs/operations.md.
#   docker build -t policy_push .
#   docker compose -f deploy/compose.yaml up          (PostgreSQL, migrations, API node, worker node)
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY policy_push policy_push
COPY matchers matchers
COPY channels channels
COPY scheduler scheduler
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
# an unprivileged user; the data directory holds only the match index cache (PostgreSQL holds the data)
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/policy_push policy_push
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER policy_push
WORKDIR /var/lib/policy_push
ENV POLICY_PUSH_DATA_DIR=/var/lib/policy_push \
    POLICY_PUSH_HOST=0.0.0.0 \
    POLICY_PUSH_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
EXPOSE 8080
# SIGTERM: no new claims, running ticks finish, claims handed back, exit 0 within POLICY_PUSH_STOP_GRACE_S
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/livez', timeout=3)"]
ENTRYPOINT ["policy-push"]
CMD ["serve"]
