"""A throwaway PostgreSQL 15 cluster for tests and benchmarks (Debian's `postgresql` package), as
../shared/notes/machine.md describes: initdb + pg_ctl as the unprivileged `postgres` user when run as
root, in a temp dir, listening on a Unix socket only, removed afterwards.

    with pgcluster.Cluster() as pg:
        uri = pg.create_db("g1")      # postgresql:///g1?host=...&port=...&user=visiond
        pg.stop("immediate")          # a crash (no checkpoint); pg.start() brings it back

Cluster() raises Unavailable when PostgreSQL 15 is not installed (scripts/install-deps installs it).
"""
import os
import pathlib
import shutil
import subprocess
import tempfile

BIN = pathlib.Path("/usr/lib/postgresql/15/bin")


class Unavailable(Exception):
    pass


class Cluster:
    def __init__(self, port=55434):
        if not (BIN / "initdb").exists():
            raise Unavailable("PostgreSQL 15 is not installed (scripts/install-deps)")
        self.port = port
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="visiond-pg-"))
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run([str(BIN / "initdb"), "-D", str(self.dir / "data"), "-A", "trust", "-U", "visiond", "-E", "UTF8",
                   "--locale=C.UTF-8"])
        self.start()

    def _run(self, argv):
        r = subprocess.run(self.as_user + argv, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {r.stdout}{r.stderr}")

    def start(self):
        self._run([str(BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-o",
                   f"-p {self.port} -k {self.dir} -c listen_addresses=''", "-l", str(self.dir / "log"), "-w", "start"])

    def stop(self, mode="fast"):
        self._run([str(BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", mode, "-w", "stop"])

    def uri(self, db):
        return f"postgresql:///{db}?host={self.dir}&port={self.port}&user=visiond"

    def psql(self, db, sql):
        r = subprocess.run(["psql", "-h", str(self.dir), "-p", str(self.port), "-U", "visiond", "-d", db,
                            "-At", "-c", sql], capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        return r.stdout.strip()

    def create_db(self, name):
        self.psql("postgres", f"CREATE DATABASE {name}")
        return self.uri(name)

    def close(self):
        try:
            self.stop("fast")
        except RuntimeError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
