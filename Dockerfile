# mailwarden in a container: built with the project's Rust toolchain, run as an
# unprivileged user on a slim Debian.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin mailwarden

FROM debian:bookworm-slim
RUN useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin mailwarden
COPY --from=build /src/target/release/mailwarden /usr/local/bin/mailwarden
COPY conf/docker.toml /etc/mailwarden/mailwarden.toml
USER mailwarden
EXPOSE 8891
ENTRYPOINT ["mailwarden"]
CMD ["serve", "-c", "/etc/mailwarden/mailwarden.toml"]
