FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /srv
COPY pyproject.toml README.md ./
COPY app ./app
COPY topics ./topics
RUN pip install --no-cache-dir .
ENV LABELSTREAM_DATA_DIR=/data
EXPOSE 6066
CMD ["labelstream", "worker"]
