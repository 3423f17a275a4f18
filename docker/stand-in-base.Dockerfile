# A local stand-in for python:3.11-slim, for machines that reach no image registry (docker/ci
# builds it only when `docker pull python:3.11-slim` fails). ROOTFS is Debian bookworm, whose
# python3 is 3.11, made by debootstrap and brought in with `docker import`. What the project's
# Dockerfile expects of the official image: `python` and `pip` on PATH, pip free to install
# into the system Python (no EXTERNALLY-MANAGED marker), useradd (the passwd package, in
# /usr/sbin), LANG=C.UTF-8. The machine's CA bundle replaces Debian's, so that pip reaches
# the package index through a network that inspects TLS.
ARG ROOTFS=passwordless-ci/bookworm-minbase
FROM ${ROOTFS}
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN ln -s /usr/bin/python3 /usr/local/bin/python \
 && rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
LABEL org.opencontainers.image.description="stand-in for python:3.11-slim (debootstrap bookworm)" \
      passwordless.stand-in="debootstrap"
CMD ["python3"]
