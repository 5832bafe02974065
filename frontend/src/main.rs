//! Entry point of the wasm bundle: mount the app on `<body>` (see `pulseboard_frontend`).

fn main() {
    pulseboard_frontend::start();
}
