"""Unit tests for fixtures/binaries.py that need no cluster, no Go and no internet.

Downloads go to a release server that each test starts on 127.0.0.1. It serves
small tar.gz archives laid out like the official Kubernetes and etcd releases,
with fake executables (two-line shell scripts) in place of the real binaries.
The autouse fixture points both release URL variables at that server and the
cache at a temporary directory, so no test reaches the real default URLs or
the user's cache.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath

import pytest

from fixtures import binaries
from fixtures.binaries import BinaryError, KUBE_BINARIES

KUBE_VERSION = "1.37.2"
ETCD_VERSION = "3.6.16"
ARCH = binaries.go_arch()

# URL paths on the test server. The file names follow dl.k8s.io and etcd's GitHub releases,
# but the etcd directory is shorter than GitHub's.
KUBE_ARCHIVE_PATH = f"/v{KUBE_VERSION}/kubernetes-server-linux-{ARCH}.tar.gz"
ETCD_RELEASE_DIR = f"/etcd/v{ETCD_VERSION}"
ETCD_ARCHIVE_NAME = f"etcd-v{ETCD_VERSION}-linux-{ARCH}.tar.gz"
ETCD_ARCHIVE_PATH = f"{ETCD_RELEASE_DIR}/{ETCD_ARCHIVE_NAME}"
ETCD_SUMS_PATH = f"{ETCD_RELEASE_DIR}/SHA256SUMS"

PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                   "all_proxy", "ALL_PROXY")


class ReleaseServer:
    """HTTP server on 127.0.0.1 that serves ``files`` (URL path to body) and records request paths.

    Paths that are not in ``files`` get HTTP 404.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        release_server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                release_server.requests.append(self.path)
                body = release_server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # Keep request lines out of the test output.

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        # A short poll interval keeps shutdown, and so each test's teardown, fast.
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture(autouse=True)
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Start a release server and point the cache and both release URLs at test-owned places."""
    # urllib sends requests through any proxy named in the environment, so remove those.
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))

    release_server = ReleaseServer()
    release_server.start()
    monkeypatch.setenv("DRACONF_KUBERNETES_RELEASE_URL",
                       release_server.url + "/v{version}/kubernetes-server-linux-{arch}.tar.gz")
    monkeypatch.setenv("DRACONF_ETCD_RELEASE_URL",
                       release_server.url + "/etcd/v{version}/etcd-v{version}-linux-{arch}.tar.gz")
    yield release_server
    release_server.stop()


@pytest.fixture
def messages() -> list[str]:
    """Progress messages, collected in place of the default log call."""
    return []


# Archive builders.

def fake_executable(name: str) -> bytes:
    return f"#!/bin/sh\necho 'fake {name}'\n".encode()


def tar_gz(members: dict[str, bytes]) -> bytes:
    """Build a gzip-compressed tar that also has an entry for each parent directory."""
    directories: set[str] = set()
    for path in members:
        directories.update(str(parent) for parent in PurePosixPath(path).parents
                           if str(parent) != ".")

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for directory in sorted(directories):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for path, body in members.items():
            info = tarfile.TarInfo(path)
            info.size = len(body)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def kubernetes_archive(names: tuple[str, ...] = KUBE_BINARIES) -> bytes:
    """Build a server archive with ``names`` plus kubelet, which the harness must not extract."""
    members = {f"kubernetes/server/bin/{name}": fake_executable(name)
               for name in (*names, "kubelet")}
    members["kubernetes/LICENSES"] = b"Apache-2.0\n"
    return tar_gz(members)


def etcd_archive() -> bytes:
    """Build an etcd archive with etcdctl and a README beside etcd.

    The harness must extract only etcd.
    """
    top = f"etcd-v{ETCD_VERSION}-linux-{ARCH}"
    return tar_gz({
        f"{top}/etcd": fake_executable("etcd"),
        f"{top}/etcdctl": fake_executable("etcdctl"),
        f"{top}/README.md": b"# etcd\n",
    })


def sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def publish_kubernetes(server: ReleaseServer, archive: bytes,
                       checksum: str | None = None) -> None:
    """Serve the server archive and a ``.sha256`` file with ``checksum`` or the real digest."""
    server.files[KUBE_ARCHIVE_PATH] = archive
    server.files[KUBE_ARCHIVE_PATH + ".sha256"] = (checksum or sha256(archive)).encode()


def publish_etcd(server: ReleaseServer, archive: bytes, checksum: str | None = None) -> None:
    """Serve the etcd archive and a SHA256SUMS file with ``checksum`` or the real digest.

    SHA256SUMS also lists another platform's archive, so the parser must pick the right line.
    """
    server.files[ETCD_ARCHIVE_PATH] = archive
    other = f"etcd-v{ETCD_VERSION}-darwin-{ARCH}.zip"
    server.files[ETCD_SUMS_PATH] = (f"{sha256(b'other platform')}  {other}\n"
                                    f"{checksum or sha256(archive)}  {ETCD_ARCHIVE_NAME}\n"
                                    ).encode()


def cache_dir() -> Path:
    return Path(os.environ["XDG_CACHE_HOME"]) / "draconf"


def download_kubernetes(output: Path, messages: list[str]) -> None:
    output.mkdir(parents=True, exist_ok=True)
    binaries.download_release("kubernetes", KUBE_VERSION, output, messages.append)


def leftover_entries(component: str) -> list[str]:
    """Return the names in the component's cache directory, including staging directories."""
    directory = cache_dir() / component
    if not directory.exists():
        return []
    return sorted(entry.name for entry in directory.iterdir())


# Downloads that succeed.

def test_release_url_uses_environment(server: ReleaseServer) -> None:
    assert binaries.release_url("kubernetes", KUBE_VERSION) == server.url + KUBE_ARCHIVE_PATH
    assert binaries.release_url("etcd", ETCD_VERSION) == server.url + ETCD_ARCHIVE_PATH


def test_download_fills_cache(server: ReleaseServer, messages: list[str]) -> None:
    publish_kubernetes(server, kubernetes_archive())
    publish_etcd(server, etcd_archive())

    result = binaries.ensure_binaries(KUBE_VERSION, ETCD_VERSION, source="download",
                                      progress=messages.append)

    kube_dir = cache_dir() / "kubernetes" / f"v{KUBE_VERSION}"
    etcd_dir = cache_dir() / "etcd" / f"v{ETCD_VERSION}"
    assert result.kubernetes_version == KUBE_VERSION
    assert result.etcd_version == ETCD_VERSION
    for name in KUBE_BINARIES:
        assert result[name] == kube_dir / name
    assert result["etcd"] == etcd_dir / "etcd"
    for name, path in result.paths.items():
        assert path.read_bytes() == fake_executable(name), name
        assert os.access(path, os.X_OK), f"{path} is not executable"

    # Only the wanted binaries are extracted: not kubelet, etcdctl or the docs.
    assert sorted(entry.name for entry in kube_dir.iterdir()) == sorted(KUBE_BINARIES)
    assert sorted(entry.name for entry in etcd_dir.iterdir()) == ["etcd"]
    # No staging directories are left beside the cached versions.
    assert leftover_entries("kubernetes") == [f"v{KUBE_VERSION}"]
    assert leftover_entries("etcd") == [f"v{ETCD_VERSION}"]

    # The server has a .sha256 file for Kubernetes but only SHA256SUMS for etcd, so the
    # etcd lookup tries .sha256 first and falls back to SHA256SUMS.
    assert server.requests == [
        KUBE_ARCHIVE_PATH + ".sha256",
        KUBE_ARCHIVE_PATH,
        ETCD_ARCHIVE_PATH + ".sha256",
        ETCD_SUMS_PATH,
        ETCD_ARCHIVE_PATH,
    ]
    assert f"kubernetes v{KUBE_VERSION} is cached in {kube_dir}" in messages
    assert f"etcd v{ETCD_VERSION} is cached in {etcd_dir}" in messages


def test_second_call_uses_cache(server: ReleaseServer, messages: list[str]) -> None:
    publish_kubernetes(server, kubernetes_archive())
    publish_etcd(server, etcd_archive())
    first = binaries.ensure_binaries(KUBE_VERSION, ETCD_VERSION, source="download",
                                     progress=messages.append)
    requests_after_first = len(server.requests)
    assert requests_after_first > 0

    second = binaries.ensure_binaries(KUBE_VERSION, ETCD_VERSION, source="download",
                                      progress=messages.append)
    from_cache_only = binaries.ensure_binaries(KUBE_VERSION, ETCD_VERSION, source="cache",
                                               progress=messages.append)

    assert len(server.requests) == requests_after_first
    assert second.paths == first.paths
    assert from_cache_only.paths == first.paths


def test_download_release_writes_wanted_binaries(server: ReleaseServer, tmp_path: Path,
                                                 messages: list[str]) -> None:
    publish_kubernetes(server, kubernetes_archive())
    output = tmp_path / "out"

    download_kubernetes(output, messages)

    assert sorted(entry.name for entry in output.iterdir()) == sorted(KUBE_BINARIES)
    for name in KUBE_BINARIES:
        assert (output / name).read_bytes() == fake_executable(name)
        assert os.access(output / name, os.X_OK), f"{name} is not executable"
    assert f"downloading {server.url}{KUBE_ARCHIVE_PATH}" in messages


# Downloads that must fail.

def test_kubernetes_checksum_mismatch_installs_nothing(server: ReleaseServer,
                                                       messages: list[str]) -> None:
    archive = kubernetes_archive()
    wrong = sha256(b"a different archive")
    publish_kubernetes(server, archive, checksum=wrong)
    publish_etcd(server, etcd_archive())

    with pytest.raises(BinaryError) as caught:
        binaries.ensure_binaries(KUBE_VERSION, ETCD_VERSION, source="download",
                                 progress=messages.append)

    message = str(caught.value)
    assert message.startswith(f"checksum mismatch for {server.url}{KUBE_ARCHIVE_PATH}")
    assert f"published {wrong}" in message
    assert f"downloaded file has {sha256(archive)}" in message
    assert "nothing was installed" in message
    assert not (cache_dir() / "kubernetes" / f"v{KUBE_VERSION}").exists()
    assert leftover_entries("kubernetes") == []
    # Kubernetes failed first, so etcd was never fetched either.
    assert ETCD_ARCHIVE_PATH not in server.requests


def test_etcd_checksum_mismatch_installs_nothing(server: ReleaseServer,
                                                 messages: list[str]) -> None:
    archive = etcd_archive()
    wrong = sha256(b"a different archive")
    publish_kubernetes(server, kubernetes_archive())
    publish_etcd(server, archive, checksum=wrong)

    with pytest.raises(BinaryError) as caught:
        binaries.ensure_binaries(KUBE_VERSION, ETCD_VERSION, source="download",
                                 progress=messages.append)

    message = str(caught.value)
    assert message.startswith(f"checksum mismatch for {server.url}{ETCD_ARCHIVE_PATH}")
    assert f"published {wrong}" in message
    assert f"downloaded file has {sha256(archive)}" in message
    assert not (cache_dir() / "etcd" / f"v{ETCD_VERSION}").exists()
    assert leftover_entries("etcd") == []


def test_missing_checksum_rejected(server: ReleaseServer, tmp_path: Path,
                                   messages: list[str]) -> None:
    server.files[KUBE_ARCHIVE_PATH] = kubernetes_archive()
    output = tmp_path / "out"

    with pytest.raises(BinaryError) as caught:
        download_kubernetes(output, messages)

    message = str(caught.value)
    assert message.startswith(f"no SHA-256 checksum is published for {server.url}"
                              f"{KUBE_ARCHIVE_PATH}")
    assert "looked for .sha256 and SHA256SUMS" in message
    assert "refusing to install an unverified binary" in message
    assert server.requests == [KUBE_ARCHIVE_PATH + ".sha256", f"/v{KUBE_VERSION}/SHA256SUMS"]
    assert list(output.iterdir()) == []


def test_sha256sums_without_entry_rejected(server: ReleaseServer, tmp_path: Path,
                                           messages: list[str]) -> None:
    server.files[ETCD_ARCHIVE_PATH] = etcd_archive()
    other = f"etcd-v{ETCD_VERSION}-windows-amd64.zip"
    server.files[ETCD_SUMS_PATH] = f"{sha256(b'other platform')}  {other}\n".encode()
    output = tmp_path / "out"
    output.mkdir()

    with pytest.raises(BinaryError) as caught:
        binaries.download_release("etcd", ETCD_VERSION, output, messages.append)

    assert str(caught.value).startswith(
        f"no SHA-256 checksum is published for {server.url}{ETCD_ARCHIVE_PATH}")
    assert ETCD_ARCHIVE_PATH not in server.requests
    assert list(output.iterdir()) == []


def test_empty_checksum_file_rejected(server: ReleaseServer, tmp_path: Path,
                                      messages: list[str]) -> None:
    server.files[KUBE_ARCHIVE_PATH] = kubernetes_archive()
    server.files[KUBE_ARCHIVE_PATH + ".sha256"] = b""
    output = tmp_path / "out"

    with pytest.raises(BinaryError) as caught:
        download_kubernetes(output, messages)

    assert str(caught.value).startswith(
        f"no SHA-256 checksum is published for {server.url}{KUBE_ARCHIVE_PATH}")
    assert KUBE_ARCHIVE_PATH not in server.requests


def test_archive_missing_binary(server: ReleaseServer, tmp_path: Path,
                                messages: list[str]) -> None:
    without_scheduler = tuple(name for name in KUBE_BINARIES if name != "kube-scheduler")
    publish_kubernetes(server, kubernetes_archive(without_scheduler))
    output = tmp_path / "out"

    with pytest.raises(BinaryError) as caught:
        download_kubernetes(output, messages)

    assert str(caught.value) == (f"the archive {server.url}{KUBE_ARCHIVE_PATH} "
                                 "lacks kube-scheduler")
    assert list(output.iterdir()) == []


def test_archive_not_found(server: ReleaseServer, tmp_path: Path,
                           messages: list[str]) -> None:
    server.files[KUBE_ARCHIVE_PATH + ".sha256"] = sha256(kubernetes_archive()).encode()

    with pytest.raises(BinaryError) as caught:
        download_kubernetes(tmp_path / "out", messages)

    assert str(caught.value) == f"downloading {server.url}{KUBE_ARCHIVE_PATH} failed: HTTP 404"


def zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in KUBE_BINARIES:
            archive.writestr(f"kubernetes/server/bin/{name}", fake_executable(name))
    return buffer.getvalue()


@pytest.mark.parametrize("body", [
    pytest.param(zip_archive(), id="zip"),
    pytest.param(b"<html><body>Sign in to the proxy</body></html>\n", id="html-page"),
    # A truncated upload whose published checksum was computed after the truncation.
    pytest.param(kubernetes_archive()[:200], id="truncated-gzip"),
])
def test_unreadable_archive_rejected(server: ReleaseServer, tmp_path: Path,
                                     messages: list[str], body: bytes) -> None:
    publish_kubernetes(server, body)
    output = tmp_path / "out"

    with pytest.raises(BinaryError) as caught:
        download_kubernetes(output, messages)

    assert str(caught.value).startswith(
        f"the archive {server.url}{KUBE_ARCHIVE_PATH} cannot be read: ")
    assert list(output.iterdir()) == []


# Guards on the arguments and on the cache.

def test_invalid_source_rejected(server: ReleaseServer) -> None:
    with pytest.raises(BinaryError) as caught:
        binaries.ensure_binaries(KUBE_VERSION, ETCD_VERSION, source="internet")

    assert str(caught.value) == ("invalid binary source 'internet'; "
                                 "choose one of auto, build, download, cache")
    assert server.requests == []
    assert not cache_dir().exists()


@pytest.mark.parametrize("kubernetes_version, etcd_version, expected", [
    pytest.param("v1.37.2", ETCD_VERSION,
                 "invalid Kubernetes version 'v1.37.2'; expected the form 1.N.N",
                 id="kubernetes-v-prefix"),
    pytest.param("1.37", ETCD_VERSION,
                 "invalid Kubernetes version '1.37'; expected the form 1.N.N",
                 id="kubernetes-no-patch"),
    pytest.param("2.0.0", ETCD_VERSION,
                 "invalid Kubernetes version '2.0.0'; expected the form 1.N.N",
                 id="kubernetes-major-2"),
    pytest.param("1.37.2-rc.0", ETCD_VERSION,
                 "invalid Kubernetes version '1.37.2-rc.0'; expected the form 1.N.N",
                 id="kubernetes-pre-release"),
    pytest.param("1.37.2/../..", ETCD_VERSION,
                 "invalid Kubernetes version '1.37.2/../..'; expected the form 1.N.N",
                 id="kubernetes-path"),
    pytest.param(KUBE_VERSION, "v3.6.16",
                 "invalid etcd version 'v3.6.16'; expected the form 3.N.N",
                 id="etcd-v-prefix"),
    pytest.param(KUBE_VERSION, "3.6",
                 "invalid etcd version '3.6'; expected the form 3.N.N",
                 id="etcd-no-patch"),
    pytest.param(KUBE_VERSION, "",
                 "invalid etcd version ''; expected the form 3.N.N",
                 id="etcd-empty"),
])
def test_invalid_version_rejected(server: ReleaseServer, kubernetes_version: str,
                                  etcd_version: str, expected: str) -> None:
    with pytest.raises(BinaryError) as caught:
        binaries.ensure_binaries(kubernetes_version, etcd_version, source="download")

    assert str(caught.value) == expected
    assert server.requests == []


def test_cache_source_with_empty_cache(server: ReleaseServer, messages: list[str]) -> None:
    with pytest.raises(BinaryError) as caught:
        binaries.ensure_binaries(KUBE_VERSION, ETCD_VERSION, source="cache",
                                 progress=messages.append)

    kube_dir = cache_dir() / "kubernetes" / f"v{KUBE_VERSION}"
    assert str(caught.value) == (f"kubernetes v{KUBE_VERSION} is not in the cache {kube_dir} "
                                 "and --binary-source=cache forbids building or downloading it")
    assert server.requests == []
    assert not kube_dir.exists()


def test_bin_dir_lacking_binaries(server: ReleaseServer, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kube-apiserver").write_bytes(fake_executable("kube-apiserver"))
    (bin_dir / "kube-apiserver").chmod(0o755)
    # Present but not executable counts as missing.
    (bin_dir / "kubectl").write_bytes(fake_executable("kubectl"))
    (bin_dir / "kubectl").chmod(0o644)

    with pytest.raises(BinaryError) as caught:
        binaries.ensure_binaries(KUBE_VERSION, ETCD_VERSION, source="download", bin_dir=bin_dir)

    assert str(caught.value) == (f"--kube-bin-dir {bin_dir} lacks executable "
                                 "kube-controller-manager, kube-scheduler, kubectl, etcd")
    assert server.requests == []


def test_bin_dir_with_all_binaries(server: ReleaseServer, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in (*KUBE_BINARIES, "etcd"):
        (bin_dir / name).write_bytes(fake_executable(name))
        (bin_dir / name).chmod(0o755)

    result = binaries.ensure_binaries(KUBE_VERSION, ETCD_VERSION, source="download",
                                      bin_dir=bin_dir)

    assert result.paths == {name: bin_dir / name for name in (*KUBE_BINARIES, "etcd")}
    assert server.requests == []
    assert not cache_dir().exists()


# Building without Go.

@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Set PATH to an empty directory, so `go` cannot be found."""
    directory = tmp_path / "empty-path"
    directory.mkdir()
    monkeypatch.setenv("PATH", str(directory))


def assert_names_go_and_alternatives(message: str, component: str, version: str) -> None:
    assert message.startswith(f"building {component} v{version} needs the Go toolchain")
    assert "`go` is not on PATH" in message
    assert "Install Go" in message
    assert "--kube-bin-dir" in message
    assert "--binary-source=download" in message


def test_build_without_go(empty_path: None, tmp_path: Path, messages: list[str]) -> None:
    output = tmp_path / "out"
    output.mkdir()

    with pytest.raises(BinaryError) as caught:
        binaries.build_from_modules("kubernetes", KUBE_VERSION, output, messages.append)

    assert_names_go_and_alternatives(str(caught.value), "kubernetes", KUBE_VERSION)
    assert list(output.iterdir()) == []


@pytest.mark.parametrize("source", ["auto", "build"])
def test_ensure_binaries_without_go(empty_path: None, server: ReleaseServer,
                                    messages: list[str], source: str) -> None:
    with pytest.raises(BinaryError) as caught:
        binaries.ensure_binaries(KUBE_VERSION, ETCD_VERSION, source=source,
                                 progress=messages.append)

    assert_names_go_and_alternatives(str(caught.value), "kubernetes", KUBE_VERSION)
    assert server.requests == []
    assert leftover_entries("kubernetes") == []


# The wrapper go.mod for building Kubernetes from modules.

UPSTREAM_GO_MOD = """\
// This is a generated file. Do not edit directly.

module k8s.io/kubernetes

go 1.25.0

godebug default=go1.25

require (
\tgithub.com/spf13/cobra v1.9.1
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
)

replace (
\tgithub.com/example/forked => github.com/example/forked v1.2.3
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/component-base => ./staging/src/k8s.io/component-base
\tk8s.io/cri-api => ./staging/src/k8s.io/cri-api
)
"""
STAGING_MODULES = ("k8s.io/api", "k8s.io/client-go", "k8s.io/component-base", "k8s.io/cri-api")


def block(lines: list[str], opening: str) -> list[str]:
    """Return the lines between ``opening`` and the next ")" line."""
    start = lines.index(opening) + 1
    return lines[start:lines.index(")", start)]


def test_wrapper_go_mod_replaces_staging() -> None:
    text = binaries.kubernetes_wrapper_go_mod(KUBE_VERSION, UPSTREAM_GO_MOD)
    lines = text.splitlines()

    assert lines[0] == "module draconf.dev/tools/kubernetes"
    assert "go 1.25.0" in lines
    assert "godebug default=go1.25" in lines
    assert f"require k8s.io/kubernetes v{KUBE_VERSION}" in lines
    assert block(lines, "tool (") == [f"\tk8s.io/kubernetes/cmd/{name}" for name in KUBE_BINARIES]

    replaces = block(lines, "replace (")
    assert replaces == [f"\t{module} => {module} v0.37.2" for module in STAGING_MODULES]
    # Only staging modules are rewritten, and upstream's other replaces are not copied.
    assert "github.com/example/forked" not in text
    assert "./staging" not in text


def test_wrapper_go_mod_defaults_without_go_line() -> None:
    upstream = "\n".join(line for line in UPSTREAM_GO_MOD.splitlines()
                         if not line.startswith(("go ", "godebug ")))

    lines = binaries.kubernetes_wrapper_go_mod("1.34.0", upstream).splitlines()

    assert "go 1.26.0" in lines
    assert not any(line.startswith("godebug") for line in lines)
    assert "\tk8s.io/api => k8s.io/api v0.34.0" in lines


def test_wrapper_go_mod_without_staging() -> None:
    upstream = UPSTREAM_GO_MOD.replace("./staging/src/", "../vendored/")

    with pytest.raises(BinaryError) as caught:
        binaries.kubernetes_wrapper_go_mod(KUBE_VERSION, upstream)

    assert str(caught.value) == (f"the go.mod of k8s.io/kubernetes v{KUBE_VERSION} "
                                 "lists no staging modules")
