"""Roda um nó (raft_distribuido.py) sob cProfile e/ou tracemalloc.

    python3 profiled_node.py [--cprofile ARQ.prof] [--tracemalloc ARQ.txt] \\
        [--timer cpu|wall] -- raft_distribuido.py --id 0 ...

`python3 -m cProfile` só mede a thread principal, e o nó trabalha em outras
(laço de eventos, threads HTTP, envio aos pares). Aqui cada thread nova ganha
o seu próprio perfilador, e os resultados são somados num arquivo só.

Os relatórios são gravados quando o processo recebe SIGUSR1. O benchmark manda
o sinal com o nó ainda no ar e carregado, porque na saída normal o log já foi
solto da memória e o tracemalloc não veria mais nada.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import runpy
import signal
import sys
import threading
import time
import tracemalloc

# Quantos quadros de pilha o tracemalloc guarda por alocação: poucos bastam
# para chegar à linha do nó que segurou a memória, e cada quadro a mais deixa
# o nó mais lento.
TRACEMALLOC_FRAMES = 4
TOP_LINES = 30


class _Snapshot:
    """Estatísticas já coletadas, no formato que pstats.Stats aceita."""

    def __init__(self, stats: dict):
        self.stats = stats

    def create_stats(self) -> None:
        """Nada a fazer: as estatísticas já estão prontas (pstats chama isto)."""


class ThreadProfiler:
    """Um cProfile.Profile por thread, somados quando os relatórios saem."""

    def __init__(self, timer):
        self.timer = timer
        self.profiles: list = []
        self.lock = threading.Lock()

    def start(self) -> None:
        threading.setprofile(self._start_in_thread)
        self._start_in_thread()

    def _start_in_thread(self, *_ignored) -> None:
        # Chamado uma vez no começo de cada thread: troca este gancho pelo
        # perfilador da própria thread.
        sys.setprofile(None)
        profile = cProfile.Profile(self.timer)
        with self.lock:
            self.profiles.append(profile)
        profile.enable()

    def dump(self, path: str) -> None:
        with self.lock:
            profiles = list(self.profiles)
        combined = None
        for profile in profiles:
            # snapshot_stats lê os contadores sem desligar o perfilador.
            profile.snapshot_stats()
            snapshot = _Snapshot(dict(profile.stats))
            if combined is None:
                combined = pstats.Stats(snapshot)
            else:
                combined.add(snapshot)
        if combined is not None:
            combined.dump_stats(path + ".tmp")
            os.replace(path + ".tmp", path)


def write_tracemalloc_report(path: str) -> None:
    snapshot = tracemalloc.take_snapshot()
    current, peak = tracemalloc.get_traced_memory()
    lines = [f"memória rastreada agora: {current / 2**20:.1f} MiB; pico: {peak / 2**20:.1f} MiB",
             "", f"maiores {TOP_LINES} linhas por memória viva:"]
    for stat in snapshot.statistics("lineno")[:TOP_LINES]:
        frame = stat.traceback[0]
        lines.append(f"{stat.size / 2**20:8.2f} MiB {stat.count:9d} blocos  "
                     f"{frame.filename}:{frame.lineno}")
    lines += ["", "as 5 maiores pilhas completas:"]
    for stat in snapshot.statistics("traceback")[:5]:
        lines.append(f"{stat.size / 2**20:.2f} MiB em {stat.count} blocos:")
        lines.extend("    " + line for line in stat.traceback.format())
    with open(path + ".tmp", "w") as file:
        file.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)


def main() -> None:
    parser = argparse.ArgumentParser(description="Roda um nó sob cProfile e/ou tracemalloc; "
                                                 "SIGUSR1 grava os relatórios.")
    parser.add_argument("--cprofile", metavar="ARQUIVO",
                        help="arquivo .prof do cProfile (todas as threads somadas)")
    parser.add_argument("--tracemalloc", metavar="ARQUIVO",
                        help="arquivo de texto com as linhas que mais seguram memória")
    parser.add_argument("--timer", choices=["cpu", "wall"], default="cpu",
                        help="cpu mede tempo de CPU de cada thread (esperas somem); wall "
                             "mede tempo de relógio (padrão: %(default)s)")
    parser.add_argument("script", help="caminho de raft_distribuido.py")
    parser.add_argument("arguments", nargs=argparse.REMAINDER,
                        help="opções do nó, depois do caminho")
    args = parser.parse_args()

    if args.tracemalloc:
        tracemalloc.start(TRACEMALLOC_FRAMES)
    profiler = None
    if args.cprofile:
        profiler = ThreadProfiler(time.thread_time if args.timer == "cpu"
                                  else time.perf_counter)
        profiler.start()

    def write_reports(_signal_number: int, _frame) -> None:
        if profiler is not None:
            profiler.dump(args.cprofile)
        if args.tracemalloc:
            write_tracemalloc_report(args.tracemalloc)

    signal.signal(signal.SIGUSR1, write_reports)
    sys.argv = [args.script] + args.arguments
    try:
        runpy.run_path(args.script, run_name="__main__")
    finally:
        if profiler is not None:
            profiler.dump(args.cprofile)


if __name__ == "__main__":
    main()
