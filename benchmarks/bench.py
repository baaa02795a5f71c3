#!/usr/bin/env python3
"""Benchmark do nó Raft: latência, vazão, failover, memória e disco.

    python3 benchmarks/bench.py                 # 3 nós, 3 rodadas
    python3 benchmarks/bench.py --etcd          # e, lado a lado, um cluster etcd
    python3 benchmarks/bench.py --nodes 5 --rounds 1 --json resultado.json

Cada rodada inicia um cluster novo de processos reais em 127.0.0.1 (portas
livres, pastas temporárias, fsync ligado como no uso normal), mede tudo e para
os processos. Todo tráfego vai para 127.0.0.1, e cada carga tem limite de
contagem e de tempo. Só a biblioteca padrão; o etcd é opcional e só serve de
referência. Os resultados e o método estão em benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import selectors
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from raft_distribuido import translate_argparse_messages  # noqa: E402
from clusters import (HOST, Cluster, ClusterError, EtcdCluster, RaftCluster,  # noqa: E402
                      etcd_binary, etcd_version)
from loads import HttpConnection, ProtocolError, run_load  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_NODE_SCRIPT = ROOT / "raft_distribuido.py"

START_TIMEOUT_S = 30.0
CATCH_UP_TIMEOUT_S = 60.0
# Prazo para uma escrita ser comprometida depois de matar o líder; bem acima
# de qualquer failover normal, para que um defeito apareça como erro.
FAILOVER_TIMEOUT_S = 15.0
# Intervalo entre as escritas que procuram o novo líder depois do kill -9, e
# quanto tempo cada uma pode ficar sem resposta. O intervalo é a resolução da
# medida de failover.
FAILOVER_ATTEMPT_INTERVAL_S = 0.01
FAILOVER_ATTEMPT_TIMEOUT_S = 3.0
# Limite de tempo da fase que enche o log até --writes entradas.
FILL_TIMEOUT_S = 600.0
# Prazo para os nós sob profiled_node.py gravarem os relatórios.
PROFILE_WRITE_TIMEOUT_S = 180.0
# Chaves gravadas antes da carga de leitura, que lê só estas.
READ_KEYS = 1000


# ============================================================================
# Progresso no terminal
# ============================================================================

class Progress:
    """Mostra o andamento em stderr: uma linha que se atualiza num terminal,
    uma linha por fase quando a saída vai para um arquivo."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.terminal = sys.stderr.isatty()
        self.prefix = ""
        self._open_line = False

    def phase(self, text: str) -> None:
        if self.quiet:
            return
        self._end_line()
        if self.terminal:
            sys.stderr.write(f"{self.prefix}{text}")
            self._open_line = True
        else:
            sys.stderr.write(f"{self.prefix}{text}\n")
        sys.stderr.flush()

    def update(self, text: str) -> None:
        if self.quiet or not self.terminal:
            return
        sys.stderr.write(f"\r\033[K{self.prefix}{text}")
        sys.stderr.flush()
        self._open_line = True

    def done(self, text: str) -> None:
        if self.quiet:
            return
        if self.terminal:
            sys.stderr.write(f"\r\033[K{self.prefix}{text}\n")
            self._open_line = False
        else:
            sys.stderr.write(f"{self.prefix}  -> {text}\n")
        sys.stderr.flush()

    def finish_line(self) -> None:
        """Termina a linha de progresso aberta, antes de uma mensagem avulsa."""
        self._end_line()

    def _end_line(self) -> None:
        if self._open_line:
            sys.stderr.write("\n")
            self._open_line = False


# ============================================================================
# Medições
# ============================================================================

class Measurements:
    """Roda as medições de uma rodada num cluster já iniciado."""

    def __init__(self, cluster: Cluster, args: argparse.Namespace, progress: Progress,
                 round_number: int):
        self.cluster = cluster
        self.args = args
        self.progress = progress
        self.value = "v" * args.value_size
        self.key_space = args.keys
        self.tag = f"r{round_number}"
        self.leader = 0

    def leader_port(self) -> int:
        return self.cluster.client_ports[self.leader]

    def write_builder(self) -> Callable[[int, int], bytes]:
        """Monta escritas que percorrem --keys chaves, cada cliente a partir de
        um ponto diferente, para que clientes concorrentes não repitam a chave."""
        port = self.leader_port()
        cluster, value, key_space = self.cluster, self.value, self.key_space

        def build(client: int, sequence: int) -> bytes:
            number = (client * 7919 + sequence) % key_space
            return cluster.write_request(port, f"chave-{number:07d}", value)
        return build

    def loads_with_elections(self, name: str, run: Callable[[], dict]) -> dict:
        """Roda uma carga e anota o termo antes e depois e a CPU de cada processo."""
        term_before = self.cluster.max_term()
        cpu_before = self.cluster.cpu_seconds()
        machine_before = machine_busy_seconds()
        result = run()
        machine_after = machine_busy_seconds()
        cpu_after = self.cluster.cpu_seconds()
        term_after = self.cluster.max_term()
        result["term_before"] = term_before
        result["term_after"] = term_after
        result["elections"] = term_after - term_before
        seconds = max(result["seconds"], 1e-9)
        result["node_cpu_cores"] = {
            str(index): round((cpu_after[index] - cpu_before[index]) / seconds, 3)
            for index in cpu_after
            if cpu_after[index] is not None and cpu_before.get(index) is not None}
        result["client_cpu_cores"] = round(result["client_cpu_s"] / seconds, 3)
        # CPU que outros processos da máquina usaram durante a carga: acima de
        # uns 0,1 núcleo, a medida foi disputada e vale menos.
        if machine_before is not None and machine_after is not None:
            ours = sum(result["node_cpu_cores"].values()) + result["client_cpu_cores"]
            busy = (machine_after - machine_before) / seconds
            result["other_cpu_cores"] = round(max(0.0, busy - ours), 3)
        return result

    def _load(self, label: str, build: Callable[[int, int], bytes], clients: int,
              duration: float, max_ops: int, warmup: float) -> dict:
        self.progress.phase(f"{label} ...")

        def report(done: int, elapsed: float) -> None:
            self.progress.update(f"{label}: {done} respostas em {elapsed:.1f} s")

        outcome = run_load([(HOST, self.leader_port())], build, clients=clients,
                           duration=duration, max_ops=max_ops, warmup=warmup,
                           progress=report).summary()
        self.progress.done(f"{label}: {outcome['ops_per_s']:.0f} op/s, p50 "
                           f"{outcome['p50_ms']} ms, p99 {outcome['p99_ms']} ms, "
                           f"{outcome['errors']} erro(s)")
        return outcome

    def sequential_writes(self) -> dict:
        args = self.args
        return self.loads_with_elections("sequential", lambda: self._load(
            "escrita sequencial (1 cliente)", self.write_builder(), 1,
            args.sequential_seconds, args.sequential, 0.0))

    def concurrent_writes(self, clients: int) -> dict:
        args = self.args
        return self.loads_with_elections(f"writes_c{clients}", lambda: self._load(
            f"escrita com {clients} cliente(s)", self.write_builder(),
            clients, args.duration, args.max_ops, args.warmup))

    def prepare_read_keys(self) -> list:
        keys = [f"{self.tag}-leitura-{number:05d}" for number in range(READ_KEYS)]
        port = self.leader_port()
        connection = HttpConnection(HOST, port)
        try:
            for key in keys[:self.args.read_keys]:
                status, body = connection.request(
                    self.cluster.write_request(port, key, self.value))
                if status != 200:
                    raise ClusterError(f"{self.cluster.name}: gravar a chave {key} para a "
                                       f"carga de leitura falhou: HTTP {status} {body[:200]!r}")
        finally:
            connection.close()
        return keys[:self.args.read_keys]

    def linearizable_reads(self, clients: int) -> dict:
        keys = self.prepare_read_keys()
        port = self.leader_port()
        requests = [self.cluster.read_request(port, key) for key in keys]

        def build(client: int, sequence: int) -> bytes:
            return requests[(client * 7919 + sequence) % len(requests)]

        args = self.args
        return self.loads_with_elections(f"reads_c{clients}", lambda: self._load(
            f"leitura linearizável com {clients} clientes", build, clients,
            args.duration, args.max_ops, args.warmup))

    def fill_log(self) -> dict:
        """Escreve até o log do líder ter --writes entradas (com 64 clientes)."""
        target = self.args.writes
        have = self.cluster.log_entries(self.leader)
        missing = max(0, target - have)
        if missing == 0:
            return {"written": 0, "seconds": 0.0, "errors": 0, "elections": 0}
        outcome = self.loads_with_elections("fill", lambda: self._load(
            f"enchendo o log até {target} entradas", self.write_builder(),
            64, FILL_TIMEOUT_S, missing, 0.0))
        return {"written": outcome["ok"], "seconds": outcome["seconds"],
                "errors": outcome["errors"], "elections": outcome["elections"],
                "ops_per_s": outcome["ops_per_s"]}

    def memory_and_disk(self) -> dict:
        entries = self.cluster.log_entries(self.leader)
        rss = self.cluster.peak_rss_kib()
        sizes = self.cluster.data_sizes()
        rss_mib = {str(index): round(kib / 1024, 1) for index, kib in rss.items()
                   if kib is not None}
        return {
            "log_entries": entries,
            "peak_rss_mib_max": max(rss_mib.values(), default=None),
            "peak_rss_mib_per_node": rss_mib,
            "log_bytes_per_node": {str(index): size["log_bytes"]
                                   for index, size in sizes.items()},
            "data_dir_bytes_per_node": {str(index): size["data_dir_bytes"]
                                        for index, size in sizes.items()},
            "log_bytes_max": max(size["log_bytes"] for size in sizes.values()),
            "data_dir_bytes_max": max(size["data_dir_bytes"] for size in sizes.values()),
        }

    def failover(self) -> dict:
        samples = []
        for repetition in range(self.args.failovers):
            label = f"failover {repetition + 1}/{self.args.failovers}"
            if repetition == 0:
                self.progress.phase(label)
            else:
                self.progress.update(label)
            samples.append(self._one_failover())
        if samples:
            self.progress.done(f"failover: mediana {statistics.median(samples):.0f} ms, "
                               f"máximo {max(samples):.0f} ms em {len(samples)} repetições")
        return {"samples_ms": [round(sample, 1) for sample in samples],
                "median_ms": round(statistics.median(samples), 1) if samples else None,
                "max_ms": round(max(samples), 1) if samples else None,
                "min_ms": round(min(samples), 1) if samples else None}

    def _one_failover(self) -> float:
        """Mata o líder com SIGKILL e mede até a próxima escrita comprometida.

        A partir da morte, uma escrita nova sai a cada FAILOVER_ATTEMPT_INTERVAL_S,
        cada uma numa conexão nova e alternando entre os sobreviventes, sem
        esperar as anteriores: uma escrita que ficou presa no líder morto não
        atrasa a medição. A primeira resposta 200 marca o fim. O nó morto é
        reiniciado com a sua pasta, e a medição seguinte só começa quando todos
        alcançaram o líder.
        """
        cluster = self.cluster
        old_leader = cluster.wait_for_leader(START_TIMEOUT_S)
        survivors = [index for index in range(cluster.size) if index != old_leader]
        killed_at = time.perf_counter()
        cluster.kill(old_leader)
        committed_at = self._first_commit_after(survivors, killed_at)
        if committed_at is None:
            raise ClusterError(f"{cluster.name}: nenhuma escrita comprometida em "
                               f"{FAILOVER_TIMEOUT_S:.0f} s depois de matar o líder "
                               f"{old_leader}\n{cluster.describe_failure()}")
        cluster.spawn(old_leader)
        cluster.wait_for_leader(START_TIMEOUT_S)
        cluster.wait_caught_up(CATCH_UP_TIMEOUT_S)
        return (committed_at - killed_at) * 1000

    def _first_commit_after(self, survivors: list, start: float) -> Optional[float]:
        """Manda escritas escalonadas aos sobreviventes; devolve o instante
        (perf_counter) da primeira resposta 200, ou None no prazo esgotado."""
        selector = selectors.DefaultSelector()
        pending: dict = {}
        next_attempt = start
        attempt = 0
        try:
            while True:
                now = time.perf_counter()
                if now - start > FAILOVER_TIMEOUT_S:
                    return None
                if now >= next_attempt:
                    next_attempt += FAILOVER_ATTEMPT_INTERVAL_S
                    index = survivors[attempt % len(survivors)]
                    attempt += 1
                    port = self.cluster.client_ports[index]
                    connection = HttpConnection(HOST, port)
                    try:
                        connection.connect()
                        connection.sock.sendall(self.cluster.write_request(
                            port, f"{self.tag}-failover-{attempt}", self.value))
                        connection.sock.setblocking(False)
                        selector.register(connection.sock, selectors.EVENT_READ, connection)
                        pending[connection] = now
                    except OSError:
                        connection.close()
                wait = max(0.0, min(next_attempt - time.perf_counter(), 0.05))
                for key, _ in selector.select(timeout=wait):
                    connection = key.data
                    try:
                        chunk = connection.sock.recv(65536)
                        if not chunk:
                            raise ConnectionError("conexão fechada")
                        connection.buffer += chunk
                        parsed = connection.take_response()
                    except (OSError, ProtocolError):
                        parsed = (None, b"", True)
                    if parsed is None:
                        continue
                    if parsed[0] == 200:
                        return time.perf_counter()
                    selector.unregister(connection.sock)
                    connection.close()
                    del pending[connection]
                # Tentativas velhas são abandonadas, para limitar os sockets abertos.
                now = time.perf_counter()
                for connection, sent_at in list(pending.items()):
                    if now - sent_at > FAILOVER_ATTEMPT_TIMEOUT_S:
                        selector.unregister(connection.sock)
                        connection.close()
                        del pending[connection]
        finally:
            selector.close()
            for connection in pending:
                connection.close()


def run_round(cluster: Cluster, args: argparse.Namespace, progress: Progress,
              round_number: int) -> dict:
    """Uma rodada completa num cluster novo; devolve as medições."""
    result: dict = {}
    measurements = Measurements(cluster, args, progress, round_number)
    progress.phase(f"iniciando {cluster.size} nós")
    started = cluster.start()
    first_leader_at = cluster.wait_for_first_leader(START_TIMEOUT_S)
    result["startup_to_leader_ms"] = round((first_leader_at - started) * 1000, 1)
    measurements.leader = cluster.wait_for_leader(START_TIMEOUT_S)
    progress.done(f"primeiro líder {result['startup_to_leader_ms']:.0f} ms depois da partida")

    result["sequential_write"] = measurements.sequential_writes()
    for clients in args.clients:
        result[f"writes_c{clients}"] = measurements.concurrent_writes(clients)
    result[f"reads_c{args.read_clients}"] = measurements.linearizable_reads(args.read_clients)
    result["fill"] = measurements.fill_log()
    load_keys = ["sequential_write", *(f"writes_c{clients}" for clients in args.clients),
                 f"reads_c{args.read_clients}", "fill"]
    result["elections_during_loads"] = sum(result[key]["elections"] for key in load_keys)
    result["memory_and_disk"] = measurements.memory_and_disk()
    if args.profile_dir or args.tracemalloc_dir:
        write_profiles(cluster, progress)
    result["failover"] = measurements.failover()
    return result


def write_profiles(cluster: RaftCluster, progress: Progress) -> None:
    """Pede a cada nó sob profiled_node.py que grave os relatórios (SIGUSR1) e
    espera os arquivos aparecerem."""
    progress.phase("gravando perfis dos nós")
    expected = []
    for index, process in cluster.processes.items():
        if not process.alive():
            continue
        if cluster.profile_dir is not None:
            expected.append(cluster.profile_dir / f"no-{index}.prof")
        if cluster.tracemalloc_dir is not None:
            expected.append(cluster.tracemalloc_dir / f"no-{index}.txt")
    signaled_at = time.time()
    for process in cluster.processes.values():
        if process.alive():
            os.kill(process.pid, signal.SIGUSR1)
    # Com centenas de milhares de blocos rastreados, o relatório do tracemalloc
    # leva dezenas de segundos.
    deadline = time.monotonic() + PROFILE_WRITE_TIMEOUT_S
    missing = expected
    while missing and time.monotonic() < deadline:
        time.sleep(0.2)
        missing = [path for path in missing
                   if not path.exists() or path.stat().st_mtime < signaled_at]
    if missing:
        progress.done(f"perfis não gravados em {PROFILE_WRITE_TIMEOUT_S:.0f} s: "
                      f"{', '.join(str(path) for path in missing)}")
    else:
        progress.done("perfis gravados")


# ============================================================================
# Resumo, tabela e JSON
# ============================================================================

def numeric_leaves(data: dict, prefix: str = "") -> dict:
    """Achata um dicionário em {"a.b": número} só com os valores numéricos."""
    leaves = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            leaves[path] = value
        elif isinstance(value, dict):
            leaves.update(numeric_leaves(value, path + "."))
    return leaves


def summarize(rounds: list) -> dict:
    """Mediana, mínimo e máximo de cada número entre as rodadas."""
    collected: dict = {}
    for round_result in rounds:
        for path, value in numeric_leaves(round_result).items():
            collected.setdefault(path, []).append(value)
    return {path: {"median": statistics.median(values), "min": min(values),
                   "max": max(values)}
            for path, values in collected.items()}


TABLE_ROWS = [
    ("escrita sequencial p50 (ms)", "sequential_write.p50_ms", "{:.2f}"),
    ("escrita sequencial p99 (ms)", "sequential_write.p99_ms", "{:.2f}"),
    ("escritas/s, 1 cliente", "writes_c1.ops_per_s", "{:.0f}"),
    ("  p50 / p99 (ms)", ("writes_c1.p50_ms", "writes_c1.p99_ms"), "{:.2f}"),
    ("escritas/s, 16 clientes", "writes_c16.ops_per_s", "{:.0f}"),
    ("  p50 / p99 (ms)", ("writes_c16.p50_ms", "writes_c16.p99_ms"), "{:.2f}"),
    ("escritas/s, 64 clientes", "writes_c64.ops_per_s", "{:.0f}"),
    ("  p50 / p99 (ms)", ("writes_c64.p50_ms", "writes_c64.p99_ms"), "{:.2f}"),
    ("leituras lineariz./s, 16 clientes", "reads_c16.ops_per_s", "{:.0f}"),
    ("  p50 / p99 (ms)", ("reads_c16.p50_ms", "reads_c16.p99_ms"), "{:.2f}"),
    ("failover, mediana (ms)", "failover.median_ms", "{:.0f}"),
    ("failover, máximo (ms)", "failover.max_ms", "{:.0f}"),
    ("eleições durante as cargas", "elections_during_loads", "{:.0f}"),
    ("CPU de outros processos, 64 cl. (núcleos)", "writes_c64.other_cpu_cores", "{:.2f}"),
    ("partida até o 1º líder (ms)", "startup_to_leader_ms", "{:.0f}"),
    ("entradas no log no fim", "memory_and_disk.log_entries", "{:.0f}"),
    ("pico de RSS de um nó (MiB)", "memory_and_disk.peak_rss_mib_max", "{:.1f}"),
    ("log em disco de um nó (MiB)", "memory_and_disk.log_bytes_max", "mib"),
    ("pasta de dados de um nó (MiB)", "memory_and_disk.data_dir_bytes_max", "mib"),
]


# Linhas em que a razão raft ÷ etcd não quer dizer nada.
NO_RATIO_ROWS = {"elections_during_loads", "writes_c64.other_cpu_cores"}


def _format_cell(summary: dict, path, style: str) -> str:
    def one(key: str) -> str:
        item = summary.get(key)
        if item is None:
            return "-"
        if style == "mib":
            return f"{item['median'] / 2**20:.1f}"
        return style.format(item["median"])

    def spread(key: str) -> str:
        item = summary.get(key)
        if item is None or item["min"] == item["max"]:
            return ""
        if style == "mib":
            return f" [{item['min'] / 2**20:.1f}–{item['max'] / 2**20:.1f}]"
        return f" [{style.format(item['min'])}–{style.format(item['max'])}]"

    if isinstance(path, tuple):
        return " / ".join(one(key) for key in path)
    return one(path) + spread(path)


def _ratio(ours: dict, theirs: dict, path) -> str:
    if isinstance(path, tuple):
        return " / ".join(_ratio(ours, theirs, key) for key in path)
    if path not in ours or path not in theirs or not theirs[path]["median"]:
        return "-"
    return f"{ours[path]['median'] / theirs[path]['median']:.2f}"


def format_table(report: dict) -> str:
    """Tabela com a mediana entre rodadas e [mínimo–máximo], um sistema por coluna."""
    systems = [name for name, data in report["systems"].items() if "summary" in data]
    header = ["medida"] + [f"{name} (mediana [mín–máx])" for name in systems]
    compare = systems == ["raft", "etcd"]
    if compare:
        header.append("raft ÷ etcd")
    rows = [header]
    for label, path, style in TABLE_ROWS:
        summaries = [report["systems"][name]["summary"] for name in systems]
        row = [label] + [_format_cell(summary, path, style) for summary in summaries]
        if compare:
            ratio = "-" if path in NO_RATIO_ROWS else _ratio(summaries[0], summaries[1], path)
            row.append(ratio)
        rows.append(row)
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = []
    for number, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[column]) for column, cell in enumerate(row)))
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    for name, data in report["systems"].items():
        if "skipped" in data:
            lines.append(f"{name}: não medido ({data['skipped']})")
    return "\n".join(lines)


def machine_busy_seconds() -> Optional[float]:
    """Tempo de CPU ocupado da máquina inteira (todos os núcleos), de /proc/stat."""
    try:
        with open("/proc/stat") as file:
            fields = file.readline().split()
    except OSError:
        return None
    # cpu user nice system idle iowait irq softirq steal ...: idle e iowait
    # são tempo livre.
    values = [int(value) for value in fields[1:9]]
    busy = sum(values) - values[3] - values[4]
    return busy / os.sysconf("SC_CLK_TCK")


def machine_info() -> dict:
    model = "?"
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    # A carga média antes da medição mostra se outros processos disputavam a CPU.
    return {"nproc": os.cpu_count(), "cpu_model": model,
            "python": platform.python_version(), "platform": platform.platform(),
            "loadavg_at_start": [round(value, 2) for value in os.getloadavg()]}


# ============================================================================
# Linha de comando
# ============================================================================

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Mede o nó Raft (e, com --etcd, um cluster etcd) em 127.0.0.1: "
                    "latência e vazão de escrita, leituras linearizáveis, failover, "
                    "memória e disco.")
    parser.add_argument("--nodes", type=int, default=3, choices=[3, 5],
                        help="nós em cada cluster, o do etcd também (padrão: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, metavar="N",
                        help="rodadas, cada uma com um cluster novo (padrão: %(default)s)")
    parser.add_argument("--json", metavar="ARQUIVO",
                        help="grava os resultados completos neste arquivo JSON")
    parser.add_argument("--node-script", type=Path, default=DEFAULT_NODE_SCRIPT,
                        metavar="ARQUIVO",
                        help="nó a medir, para comparar uma cópia modificada "
                             "(padrão: raft_distribuido.py do projeto)")
    parser.add_argument("--quick", action="store_true",
                        help="modo de poucos segundos para testes: 1 rodada, cargas "
                             "curtas, 1 failover, 300 entradas")
    parser.add_argument("--work-dir", type=Path, metavar="PASTA",
                        help="onde criar as pastas de dados temporárias (padrão: a pasta "
                             "temporária do sistema); use um disco de verdade, não tmpfs")
    parser.add_argument("--keep", action="store_true",
                        help="não apaga as pastas de dados e os logs dos nós no fim")
    parser.add_argument("--quiet", action="store_true", help="sem progresso em stderr")

    loads = parser.add_argument_group("cargas")
    loads.add_argument("--duration", type=float, default=5.0, metavar="S",
                       help="duração de cada carga com clientes concorrentes, em "
                            "segundos (padrão: %(default)s)")
    loads.add_argument("--warmup", type=float, default=0.5, metavar="S",
                       help="aquecimento antes de cada carga concorrente, em segundos, "
                            "fora da medição (padrão: %(default)s)")
    loads.add_argument("--max-ops", type=int, default=200_000, metavar="N",
                       help="máximo de respostas por carga concorrente (padrão: "
                            "%(default)s)")
    loads.add_argument("--sequential", type=int, default=2000, metavar="N",
                       help="escritas da medição sequencial (padrão: %(default)s)")
    loads.add_argument("--sequential-seconds", type=float, default=30.0, metavar="S",
                       help="limite de tempo da medição sequencial (padrão: %(default)s)")
    loads.add_argument("--clients", type=int, nargs="+", default=[1, 16, 64], metavar="N",
                       help="números de clientes das cargas de escrita (padrão: 1 16 64)")
    loads.add_argument("--read-clients", type=int, default=16, metavar="N",
                       help="clientes da carga de leitura (padrão: %(default)s)")
    loads.add_argument("--read-keys", type=int, default=200, metavar="N",
                       help=f"chaves gravadas antes da carga de leitura, no máximo "
                            f"{READ_KEYS} (padrão: %(default)s)")
    loads.add_argument("--keys", type=int, default=10_000, metavar="N",
                       help="chaves distintas das cargas de escrita, reescritas em ciclo "
                            "(padrão: %(default)s)")
    loads.add_argument("--value-size", type=int, default=64, metavar="BYTES",
                       help="tamanho do valor de cada escrita (padrão: %(default)s)")
    loads.add_argument("--failovers", type=int, default=10, metavar="N",
                       help="repetições de kill -9 do líder por rodada (padrão: "
                            "%(default)s)")
    loads.add_argument("--writes", type=int, default=100_000, metavar="N",
                       help="entradas no log antes de medir memória e disco; a rodada "
                            "escreve o que faltar com 64 clientes (padrão: %(default)s)")

    etcd = parser.add_argument_group("comparação com o etcd")
    etcd.add_argument("--etcd", action="store_true",
                      help="mede também um cluster etcd pela API HTTP, se o binário etcd "
                           "estiver instalado (pacote Debian etcd-server)")
    etcd.add_argument("--only-etcd", action="store_true",
                      help="mede só o etcd (útil para comparar sem repetir o nó Raft)")
    etcd.add_argument("--etcd-heartbeat-ms", type=int, default=100, metavar="MS",
                      help="--heartbeat-interval do etcd (padrão do etcd: %(default)s)")
    etcd.add_argument("--etcd-election-ms", type=int, default=1000, metavar="MS",
                      help="--election-timeout do etcd (padrão do etcd: %(default)s)")

    profiling = parser.add_argument_group("perfil dos nós")
    profiling.add_argument("--profile-dir", type=Path, metavar="PASTA",
                           help="roda os nós sob cProfile (todas as threads) e grava "
                                "no-<id>.prof nesta pasta antes dos failovers")
    profiling.add_argument("--tracemalloc-dir", type=Path, metavar="PASTA",
                           help="roda os nós sob tracemalloc e grava no-<id>.txt nesta "
                                "pasta antes dos failovers")
    return parser


# Valores de --quick; uma opção dada explicitamente na linha de comando vale mais.
QUICK_DEFAULTS = {"rounds": 1, "duration": 0.4, "warmup": 0.1, "sequential": 30,
                  "failovers": 1, "writes": 300, "read_keys": 20}


def validate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: precisa ser pelo menos 1")
    if args.duration <= 0 or args.warmup < 0:
        parser.error("--duration precisa ser positiva e --warmup não pode ser negativo")
    if any(clients < 1 or clients > 1000 for clients in args.clients + [args.read_clients]):
        parser.error("o número de clientes precisa estar entre 1 e 1000")
    if not 1 <= args.read_keys <= READ_KEYS:
        parser.error(f"--read-keys {args.read_keys}: use de 1 a {READ_KEYS}")
    if args.keys < 1:
        parser.error(f"--keys {args.keys}: precisa ser pelo menos 1")
    if args.failovers < 0 or args.writes < 0 or args.sequential < 1:
        parser.error("--failovers e --writes não podem ser negativos, e --sequential "
                     "precisa ser pelo menos 1")
    if not args.only_etcd and not args.node_script.is_file():
        parser.error(f"--node-script {args.node_script}: arquivo não encontrado")


def measure_system(name: str, make_cluster: Callable[[Path], Cluster],
                   args: argparse.Namespace, progress: Progress, base_dir: Path) -> dict:
    """Roda todas as rodadas de um sistema, cada uma num cluster novo."""
    rounds = []
    for number in range(1, args.rounds + 1):
        progress.prefix = f"[{name} {number}/{args.rounds}] "
        workdir = Path(tempfile.mkdtemp(prefix=f"{name}-r{number}-", dir=base_dir))
        cluster = make_cluster(workdir)
        try:
            rounds.append(run_round(cluster, args, progress, number))
        finally:
            cluster.stop()
    progress.prefix = ""
    return {"rounds": rounds, "summary": summarize(rounds)}


def main(argv: Optional[list] = None) -> int:
    translate_argparse_messages()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick:
        parser.set_defaults(**QUICK_DEFAULTS)
        args = parser.parse_args(argv)
    validate(args, parser)
    # Os nós rodam com a pasta de dados como diretório atual; caminhos relativos
    # dados aqui valem a partir de onde o benchmark foi chamado.
    for name in ("profile_dir", "tracemalloc_dir"):
        folder = getattr(args, name)
        if folder is not None:
            folder = folder.resolve()
            folder.mkdir(parents=True, exist_ok=True)
            setattr(args, name, folder)
    progress = Progress(args.quiet)

    # SIGINT e SIGTERM viram KeyboardInterrupt, para que os blocos finally parem
    # os nós. SIGINT é instalado de novo porque o Python não o trata quando o
    # processo nasce com ele ignorado (um comando com & num script, por exemplo).
    def interrupt(_signal_number: int, _frame) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    base_dir = Path(tempfile.mkdtemp(prefix="raft-bench-", dir=args.work_dir))
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": {key: (str(value) if isinstance(value, Path) else value)
                     for key, value in sorted(vars(args).items())},
        "systems": {},
    }
    try:
        if not args.only_etcd:
            node_script = args.node_script.resolve()
            report["systems"]["raft"] = measure_system(
                "raft", lambda workdir: RaftCluster(
                    args.nodes, workdir, node_script, args.profile_dir,
                    args.tracemalloc_dir),
                args, progress, base_dir)
        if args.etcd or args.only_etcd:
            binary = etcd_binary()
            if binary is None:
                message = ("binário etcd não encontrado no PATH; instale com "
                           "'apt-get install etcd-server' para a comparação")
                progress.phase(f"etcd: {message}")
                report["systems"]["etcd"] = {"skipped": message}
            else:
                report["systems"]["etcd"] = measure_system(
                    "etcd", lambda workdir: EtcdCluster(
                        args.nodes, workdir, binary, args.etcd_heartbeat_ms,
                        args.etcd_election_ms),
                    args, progress, base_dir)
                report["systems"]["etcd"]["version"] = etcd_version(binary)
    except KeyboardInterrupt:
        progress.finish_line()
        print("interrompido; todos os processos iniciados foram parados", file=sys.stderr)
        return 130
    except ClusterError as error:
        progress.finish_line()
        print(f"erro: {error}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"pastas de dados e logs mantidos em {base_dir}", file=sys.stderr)
        else:
            shutil.rmtree(base_dir, ignore_errors=True)

    table = format_table(report)
    print(f"máquina: {report['machine']['nproc']} núcleos ({report['machine']['cpu_model']}), "
          f"Python {report['machine']['python']}; {report['date']}; {args.nodes} nós, "
          f"{args.rounds} rodada(s)")
    print(table)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(report, file, indent=2, ensure_ascii=False)
            file.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
