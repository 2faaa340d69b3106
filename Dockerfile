FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /srv
COPY pyproject.toml README.md ./
COPY app ./app
COPY topics ./topics
RUN pip install --no-cache-dir .
# The nudity model is AGPL-3.0 (README: Licences) and left out unless asked for:
# docker build --build-arg NUDITY=1 . (without it, nudity classifiers' items are model_unavailable dead letters)
ARG NUDITY=0
RUN if [ "$NUDITY" = "1" ]; then pip install --no-cache-dir '.[nudity]' && pip install --no-cache-dir --no-deps nudenet==3.4.2; fi
ENV LABELSTREAM_DATA_DIR=/data
EXPOSE 6066
CMD ["labelstream", "worker"]
