"""MongoDB: the comments service's own user, and root kept by the store.

The init script compose mounts and the one the dev overlay's ConfigMap
holds are run as the mongo image runs them at its first start: mongosh is
not installed here, so node runs the script with ``db.getSiblingDB`` recording
the ``createUser`` calls, which are then applied, with the image's root
user, to a real MongoDB-wire server (SecantusDB, which has MongoDB's users
and built-in roles); the server is restarted with authentication on, and
the comments service's ``MONGO_URL`` must reach its own database and nothing
else. Not run here: mongosh itself and a real mongod.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pymongo
import pytest
from pymongo.errors import OperationFailure

from blogtest.ports import free_port
from blogtest.processes import Process, running, tcp_ready
from tests.deploy import test_k8s as k8s
from tests.deploy.credentials import (
    compose_component,
    compose_services,
    k8s_component_containers,
    k8s_data,
    plain,
    store_pods,
    swap_host,
)
from tests.deploy.dockerfiles import DOCKER

# mongosh's globals the init scripts use, recording what they ask for.
NODE_SHIM = """
const fs = require("fs"), vm = require("vm");
const calls = [];
const db = { getSiblingDB: (name) => ({ createUser: (spec) => calls.push({ db: name, spec }) }) };
vm.runInNewContext(fs.readFileSync(process.argv[1], "utf8"), { db, process });
console.log(JSON.stringify(calls));
"""
COMMENTS = "comments"


def compose_setup() -> tuple[dict[str, str], dict[str, str], str]:
    """(init scripts by file name, the store's environment, the comments' MONGO_URL)."""
    store, url = None, None
    for _stage_file, _name, service in compose_services():
        if str(service.get("image", "")).startswith("mongo:"):
            store = service
        elif compose_component(service) == COMMENTS and "MONGO_URL" in service["environment"]:
            url = service["environment"]["MONGO_URL"]
    assert store, "no mongo service"
    assert url, "no MONGO_URL of the comments service"
    mounts = [v.split(":") for v in store["volumes"]]
    init = {
        target.rsplit("/", 1)[1]: (DOCKER / source).read_text()
        for source, target, *_ in mounts
        if target.startswith("/docker-entrypoint-initdb.d/")
    }
    return init, {k: str(v) for k, v in store["environment"].items()}, url


def k8s_setup() -> tuple[dict[str, str], dict[str, str], str]:
    """The same for the dev overlay: its ConfigMap, the StatefulSet's
    environment, and the MONGO_URL every comments container reads."""
    urls = {
        plain(env)["MONGO_URL"]
        for _overlay, _name, container, env in k8s_component_containers()
        if k8s.component_of(container) == COMMENTS and "MONGO_URL" in env
    }
    assert len(urls) == 1, urls
    return k8s_data("ConfigMap", "mongo-init"), plain(store_pods()["mongo"][1]), urls.pop()


SETUPS = {"compose": compose_setup, "k8s": k8s_setup}


def create_user_calls(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    node = shutil.which("node")
    assert node, "node is needed to run the mongo init scripts"
    return subprocess.run(
        [node, "-e", NODE_SHIM, str(script)],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def server(port: int, folder: Path, *, auth: bool) -> Process:
    command = [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port),
               "--storage-path", str(folder / "data")]  # fmt: skip
    return Process("mongodb", command + (["--auth"] if auth else []), folder, ready=tcp_ready(port))


def client(url: str) -> pymongo.MongoClient:
    return pymongo.MongoClient(url, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000)


@pytest.mark.parametrize("setup", SETUPS)
def test_the_comments_user_reads_and_writes_its_own_database_only(setup):
    init, env, comments_url = SETUPS[setup]()
    assert init, f"{setup}: no init script"
    folder = Path(tempfile.mkdtemp(prefix="blog-mongo-"))
    try:
        calls = []
        for file_name, text in sorted(init.items()):
            script = folder / file_name
            script.write_text(text)
            result = create_user_calls(script, env)
            assert result.returncode == 0, result.stderr
            calls += json.loads(result.stdout)
            # Without the password, the script stops the first start.
            unset = {k: v for k, v in env.items() if k != "COMMENTS_MONGO_PASSWORD"}
            assert create_user_calls(script, unset).returncode != 0, file_name
        assert [(c["db"], c["spec"]["user"]) for c in calls] == [(COMMENTS, COMMENTS)]
        root, password = env["MONGO_INITDB_ROOT_USERNAME"], env["MONGO_INITDB_ROOT_PASSWORD"]
        port = free_port()
        (folder / "data").mkdir()
        with running([server(port, folder, auth=False)], folder):
            admin = client(f"mongodb://127.0.0.1:{port}")
            admin.admin.command("createUser", root, pwd=password, roles=["root"])
            for call in calls:
                spec = dict(call["spec"])
                admin[call["db"]].command("createUser", spec.pop("user"), **spec)
        with running([server(port, folder, auth=True)], folder):
            check_access(setup, swap_host(comments_url, "127.0.0.1", port), root, password, port)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def not_authorized(attempt) -> bool:
    try:
        attempt()
    except OperationFailure as exc:
        return "not authorized" in str(exc)
    return False


def check_access(setup: str, url: str, root: str, password: str, port: int) -> None:
    own = client(url)
    own[COMMENTS]["comments"].insert_one({"_id": "one"})
    assert own[COMMENTS]["comments"].find_one({"_id": "one"}) == {"_id": "one"}
    own[COMMENTS]["comments"].create_index("post_id")
    for what, attempt in {
        "another database": lambda: own["blog_other"]["x"].insert_one({}),
        "reading another database": lambda: own["admin"]["system.users"].find_one(),
        "listing the databases": lambda: own.admin.command("listDatabases"),
        "making a user": lambda: own[COMMENTS].command(
            "createUser", "intruder", pwd=secrets.token_hex(8), roles=[]
        ),
        "dropping its database": lambda: own.drop_database(COMMENTS),
    }.items():
        assert not_authorized(attempt), f"{setup}: the comments user could do {what}"
    wrong = client(url.replace(url.split("://", 1)[1].split("@")[0], "comments:wrong"))
    with pytest.raises(OperationFailure):
        wrong[COMMENTS]["comments"].find_one()
    # Root, which stays with the store, still can.
    root_client = client(f"mongodb://{root}:{password}@127.0.0.1:{port}/?authSource=admin")
    assert COMMENTS in root_client.list_database_names()
