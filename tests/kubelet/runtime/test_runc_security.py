"""securityContext with real runc: users, read-only root, capabilities, no_new_privs, masks."""

from __future__ import annotations

from pathlib import Path

import pytest
from runtime_support import SpecFactory, run_to_exit

from skiff.kubelet.runtime.bundle import (ALL_CAPABILITIES, DEFAULT_CAPABILITIES,
                                          available_capabilities)
from skiff.kubelet.runtime.interface import ContainerConfigError, Mount, SecurityContext
from skiff.kubelet.runtime.runc import RuncRuntime


def cap_mask(names: list[str] | tuple[str, ...]) -> int:
    return sum(1 << ALL_CAPABILITIES.index(name) for name in names)


async def output_of(runtime: RuncRuntime, spec: SpecFactory, sandbox: str, script: str,
                    **fields: object) -> list[str]:
    status, lines = await run_to_exit(runtime, spec(sandbox, "sh", "-c", script, **fields))
    assert status.exit_code == 0, lines
    return [line.split(" ", 1)[1] for line in lines]


async def test_read_only_root_filesystem_with_a_writable_volume(
        runtime: RuncRuntime, sandbox: str, spec: SpecFactory, tmp_path: Path) -> None:
    volume = tmp_path / "data"
    volume.mkdir()
    script = ("touch /new 2>/dev/null; echo root=$?; touch /tmp/x 2>/dev/null; echo tmp=$?; "
              "(echo kept > /data/file) 2>/dev/null; echo data=$?")
    lines = await output_of(runtime, spec, sandbox, script,
                            security=SecurityContext(read_only_root_filesystem=True),
                            mounts=(Mount(volume, "/data"),))
    assert lines == ["root=1", "tmp=1", "data=0"]
    assert (volume / "file").read_text() == "kept\n"


async def test_read_only_volume(runtime: RuncRuntime, sandbox: str, spec: SpecFactory,
                                tmp_path: Path) -> None:
    (tmp_path / "config.txt").write_text("from the host\n")
    lines = await output_of(runtime, spec, sandbox,
                            "cat /cfg/config.txt; (echo x > /cfg/new) 2>/dev/null; echo write=$?",
                            mounts=(Mount(tmp_path, "/cfg", read_only=True),))
    assert lines == ["from the host", "write=1"]
    assert not (tmp_path / "new").exists()


async def test_run_as_user_group_and_supplemental_groups(runtime: RuncRuntime, sandbox: str,
                                                         spec: SpecFactory) -> None:
    lines = await output_of(runtime, spec, sandbox, "id -u; id -g; id -G",
                            security=SecurityContext(run_as_user=1000))
    # gid from /etc/passwd, wheel (10) from /etc/group membership
    assert lines[:2] == ["1000", "1000"] and sorted(lines[2].split()) == ["10", "1000"]
    lines = await output_of(runtime, spec, sandbox, "id -u; id -g; id -G",
                            security=SecurityContext(run_as_user=4242, run_as_group=5000,
                                                     supplemental_groups=(6000,)))
    assert lines[:2] == ["4242", "5000"] and sorted(lines[2].split()) == ["5000", "6000"]


async def test_image_user_by_name(runtime: RuncRuntime, sandbox: str, spec: SpecFactory) -> None:
    assert await output_of(runtime, spec, sandbox, "id -u; id -g", image_user="app") == ["1000", "1000"]
    assert await output_of(runtime, spec, sandbox, "id -u; id -g",
                           image_user="nobody:nogroup") == ["65534", "65534"]
    with pytest.raises(ContainerConfigError, match="unable to find user ghost"):
        await runtime.create(spec(sandbox, "true", image_user="ghost"))


@pytest.mark.parametrize("security,image_user,message", [
    (SecurityContext(run_as_non_root=True), "", "image will run as root"),
    (SecurityContext(run_as_non_root=True), "app", "non-numeric user"),
    (SecurityContext(run_as_non_root=True, run_as_user=0), "1000", "breaks non-root policy"),
])
async def test_run_as_non_root_is_enforced(runtime: RuncRuntime, sandbox: str, spec: SpecFactory,
                                           security: SecurityContext, image_user: str,
                                           message: str) -> None:
    with pytest.raises(ContainerConfigError, match=message):
        await runtime.create(spec(sandbox, "true", security=security, image_user=image_user))
    assert await runtime.list(sandbox) == []   # nothing half-created stays


async def test_run_as_non_root_with_a_numeric_user_runs(runtime: RuncRuntime, sandbox: str,
                                                        spec: SpecFactory) -> None:
    lines = await output_of(runtime, spec, sandbox, "id -u", image_user="1000",
                            security=SecurityContext(run_as_non_root=True))
    assert lines == ["1000"]


async def test_capabilities_and_no_new_privileges(runtime: RuncRuntime, sandbox: str,
                                                  spec: SpecFactory) -> None:
    script = "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status | tr -s '\\t ' ' '"

    async def caps(**security: object) -> dict[str, int]:
        lines = await output_of(runtime, spec, sandbox, script,
                                security=SecurityContext(**security))  # type: ignore[arg-type]
        return {k.rstrip(":"): int(v, 16 if k.startswith("Cap") else 10)
                for k, v in (line.split() for line in lines)}

    default = await caps()
    assert default == {"CapEff": cap_mask(DEFAULT_CAPABILITIES),
                       "CapBnd": cap_mask(DEFAULT_CAPABILITIES), "NoNewPrivs": 0}
    narrowed = await caps(capabilities_drop=("ALL",), capabilities_add=("NET_ADMIN",),
                          allow_privilege_escalation=False)
    assert narrowed == {"CapEff": cap_mask(["CAP_NET_ADMIN"]),
                        "CapBnd": cap_mask(["CAP_NET_ADMIN"]), "NoNewPrivs": 1}
    dropped = await caps(capabilities_drop=("CAP_CHOWN", "kill"))
    assert dropped["CapEff"] == cap_mask([c for c in DEFAULT_CAPABILITIES
                                          if c not in ("CAP_CHOWN", "CAP_KILL")])
    assert (await caps(privileged=True))["CapEff"] == cap_mask(available_capabilities())


async def test_masked_and_read_only_proc_paths(runtime: RuncRuntime, sandbox: str,
                                               spec: SpecFactory) -> None:
    script = ("wc -c < /proc/timer_list; "
              "(echo 1 > /proc/sys/vm/overcommit_memory) 2>/dev/null; echo sysctl=$?")
    assert await output_of(runtime, spec, sandbox, script) == ["0", "sysctl=1"]
    privileged = await output_of(runtime, spec, sandbox, "wc -c < /proc/timer_list",
                                 security=SecurityContext(privileged=True))
    assert int(privileged[0]) > 0
