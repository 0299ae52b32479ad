# The streamrec image: one image, three roles (migrate, consume, train), chosen by command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app

# torch goes first and pinned: a bare `torch` requirement would pull a multi-GB CUDA build.
# Pass a CPU wheel index through PIP_EXTRA_INDEX_URL at build time to keep the image small.
ARG TORCH_VERSION=2.13.0
RUN pip install "torch==${TORCH_VERSION}"

COPY pyproject.toml README.md ./
COPY streamrec ./streamrec
COPY consumers ./consumers
COPY trainer ./trainer
COPY migrations ./migrations
RUN pip install .

# No credentials here: everything comes from STREAMREC_* variables at run time.
RUN useradd --create-home streamrec
USER streamrec
ENV STREAMREC_DATA_DIR=/home/streamrec/data
ENTRYPOINT ["streamrec"]
CMD ["--help"]
