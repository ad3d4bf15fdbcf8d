# One image for every service; docker-compose.yml picks the command.
FROM python:3.12-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir uv \
    && uv pip install --system --compile-bytecode --no-cache -r requirements.lock

COPY shared ./shared
COPY services ./services
COPY backtest ./backtest
COPY strategies ./strategies
COPY research ./research
COPY frontend ./frontend
COPY data ./data

RUN useradd --create-home --uid 10001 bot && mkdir -p /app/var && chown bot /app/var
USER bot

CMD ["python", "-m", "services.api"]
