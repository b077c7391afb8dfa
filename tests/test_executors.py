"""Local worker processes and a real Dask cluster produce byte-identical catalogs and output."""
from __future__ import annotations

from pathlib import Path

import pytest

from heritage_ld import executor, pipeline
from heritage_ld.catalog import Catalog
from heritage_ld.config import load

from test_catalog import files, rows
from test_outputs import copy_project

NOW = 1_700_000_000


def small_chunks(project: Path) -> Path:
    """Many chunks even for the small sample, so the work really is split across workers."""
    toml = project / "heritage-ld.toml"
    toml.write_text(toml.read_text().replace("chunk_size = 500", "chunk_size = 3"))
    return project


def stored(project: Path) -> dict:
    """What the catalog stores of each live record, as the writers, OAI-PMH and the pages read it: its
    fragments in every format (decoded) with the key they were made with, its triples and EDM document.
    The writers would make missing fragments again, so identical output alone does not show that the
    workers made them."""
    cat = Catalog(load(project).catalog)
    try:
        return {(r.entity, r.id): (r.frag_key, r.fragments, r.nt, r.edm_xml)
                for r in cat.rows()}
    finally:
        cat.close()


@pytest.fixture
def reference(tmp_path) -> tuple[dict, dict, dict]:
    (tmp_path / "serial").mkdir()
    project = small_chunks(copy_project(tmp_path / "serial"))
    pipeline.publish(project, now=NOW)
    made = stored(project)
    assert made and all(frag_key and fragments and fragments.get("oai_dc") for frag_key, fragments, _nt, _edm
                        in made.values())   # every live record has its fragments, oai_dc among them
    return files(project / "output"), rows(project), made


def test_two_local_workers_give_identical_output(tmp_path, reference):
    (tmp_path / "p").mkdir()
    project = small_chunks(copy_project(tmp_path / "p"))
    pipeline.publish(project, now=NOW, run=executor.make(workers=2))
    assert files(project / "output") == reference[0]
    assert rows(project) == reference[1]
    assert stored(project) == reference[2]


def test_dask_cluster_gives_identical_output(tmp_path, reference):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        run = executor.make(executor="dask", scheduler=cluster.scheduler_address)
        try:
            (tmp_path / "p").mkdir()
            project = small_chunks(copy_project(tmp_path / "p"))
            pipeline.publish(project, now=NOW, run=run)
            # each worker process loaded the project: it ran chunks of passes 2 and 3
            loaded = run.client.run(lambda: executor.project.cache_info().currsize)
        finally:
            run.close()
    assert len(loaded) == 2 and all(loaded.values()), loaded
    assert files(project / "output") == reference[0]   # every file byte for byte, the gzip members too
    assert rows(project) == reference[1]
    assert stored(project) == reference[2]              # the fragments the workers made


def test_dask_needs_a_scheduler():
    with pytest.raises(ValueError, match="--scheduler"):
        executor.make(executor="dask")


def test_writers_are_shared_among_processes_by_cost():
    from heritage_ld.writers import formats, share
    fmts = list(formats().values())
    groups = share(fmts, 2)
    assert len(groups) == 2 and sorted(f.name for g in groups for f in g) == sorted(f.name for f in fmts)
    assert all(f.local for f in fmts if f.local) and all(f in groups[0] for f in fmts if f.local)
    costs = [sum(f.cost for f in g) for g in groups]
    assert max(costs) - min(costs) <= sum(f.cost for f in fmts if f.folder == "records")  # within one unit
    folders = {f.folder for f in fmts if f.folder}
    for folder in folders:   # one process creates the files of a folder
        assert sum(any(f.folder == folder for f in g) for g in groups) == 1
    assert len(share(fmts, 1)) == 1 and set(share(fmts, 1)[0]) == set(fmts)
    assert len(share(fmts, 50)) == len(fmts) - sum(len([f for f in fmts if f.folder == d]) - 1 for d in folders)


def test_a_writer_failing_in_a_helper_process_stops_the_run_and_keeps_the_output(tmp_path, monkeypatch):
    from heritage_ld.writers import jsonld
    project = copy_project(tmp_path)
    pipeline.publish(project, now=NOW)
    before = files(project / "output")
    posts = project / "sample" / "posts.json"
    posts.write_text(posts.read_text().replace("Senior Editorial Officer", "Editor", 1))   # a change, so the output is rewritten

    def boom(self, job, rows):
        raise ValueError("disk on fire")
    monkeypatch.setattr(jsonld.JsonLd, "block", boom)
    with pytest.raises(RuntimeError, match=r"(?s)writer process for .*jsonld.*failed.*disk on fire"):
        pipeline.publish(project, now=NOW + 60, run=executor.make(workers=2))
    assert files(project / "output") == before
    assert not list(project.glob(".output.staging-*"))
    import multiprocessing
    assert not multiprocessing.active_children()


def test_a_full_disk_in_a_helper_process_reads_as_in_one_process(tmp_path, monkeypatch):
    """An OSError in a writer process is raised as that OSError would be in one process (a RunError
    naming its file and what to do, which the command line prints without a traceback), and the
    output stays as it was."""
    import errno
    from heritage_ld.writers import jsonld
    project = copy_project(tmp_path)
    pipeline.publish(project, now=NOW)
    before = files(project / "output")
    posts = project / "sample" / "posts.json"
    posts.write_text(posts.read_text().replace("Senior Editorial Officer", "Editor", 1))

    def full(self, job, rows):
        raise OSError(errno.ENOSPC, "No space left on device", "dataset.jsonld")
    monkeypatch.setattr(jsonld.JsonLd, "block", full)
    with pytest.raises(pipeline.RunError, match="^dataset.jsonld: no space left on the device: free some space "
                       r"\(df -h\) and run again; nothing was published") as info:
        pipeline.publish(project, now=NOW + 60, run=executor.make(workers=2))
    assert info.value.__cause__.errno == errno.ENOSPC and info.value.__cause__.filename == "dataset.jsonld"
    assert files(project / "output") == before


def test_record_files_can_be_turned_off_and_the_dumps_stay_the_same(tmp_path, reference):
    """``record_files = false`` (large collections served by ``heritage-ld serve``): no records/ or edm/."""
    from heritage_ld.config import ConfigError, load
    (tmp_path / "p").mkdir()
    project = small_chunks(copy_project(tmp_path / "p"))
    toml = project / "heritage-ld.toml"
    toml.write_text(toml.read_text().replace("[project]\n", "[project]\nrecord_files = false\n", 1))
    pipeline.publish(project, now=NOW, run=executor.make(workers=2))
    got = files(project / "output")
    assert not [f for f in got if f.startswith(("records/", "edm/"))]
    # (the dotfiles, .state and the dumps' indexes, name the configuration they were written with)
    assert {f: b for f, b in got.items() if not f.startswith(".")} == \
        {f: b for f, b in reference[0].items() if not f.startswith(("records/", "edm/", "."))}
    assert rows(project) == reference[1]
    toml.write_text(toml.read_text().replace("record_files = false", 'record_files = "no"'))
    with pytest.raises(ConfigError, match=r"heritage-ld.toml: \[project\] record_files must be true or false"):
        load(project)
