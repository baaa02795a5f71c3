#!/usr/bin/env python3
"""Durabilidade: `kill -9` em momentos sorteados no meio de muitas escritas.

Vários escritores gravam chaves novas sem parar (cada chave é escrita uma vez,
com um valor próprio). A cada rodada, depois de um tempo sorteado, o script
mata com `kill -9` um nó qualquer, o líder ou todos os nós de uma vez, espera
um pouco e os reinicia. Depois de cada rodada ele confere:

  - todo nó reiniciado volta a responder (nenhum se recusa a partir por causa
    do que a queda deixou no disco);
  - nenhum nó volta com termo menor que o de antes da queda;
  - o cluster elege um líder e compromete de novo até o maior índice
    confirmado a um cliente;
  - cada escrita confirmada na rodada pode ser lida com o seu valor.

No fim, os nós param com SIGTERM, o log de cada um é lido do disco e
reaplicado, e toda escrita confirmada em qualquer rodada precisa estar na
máquina de estados de todos os nós. Escritas de resultado desconhecido (503 ou
sem resposta) podem estar ou não, mas nunca com outro valor.

Uso:

    python3 tests/durability.py --rounds 100 --seed 3
    python3 tests/durability.py --rounds 30 --mode all --nodes 5
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Optional, TextIO

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from robustness_util import (Counter, LocalCluster, client_request,  # noqa: E402
                             bullet, exit_on_sigterm, indent)
from raft_distribuido import StorageError  # noqa: E402

# Tempo de escritas antes de cada kill -9 e tempo com os nós parados (segundos).
WRITE_TIME = (0.3, 1.5)
DOWN_TIME = (0.05, 1.0)

# Prazo de cada escrita no cliente e prazo das esperas depois do reinício.
CLIENT_TIMEOUT = 3.0
RECOVERY_TIMEOUT = 20.0

# Tamanho máximo do texto extra em cada valor, em caracteres: registros de
# tamanhos variados fazem o kill -9 cair em pontos diferentes de um registro.
# NOTE: os valores ficam pequenos de propósito. Cada entrada fica abaixo de
# 800 bytes, então as 512 entradas de um AppendEntries cabem no limite de corpo
# de 1 MiB. Com valores maiores, um seguidor atrasado recebe lotes acima do
# limite, responde 413 e a replicação para ele trava (docs/ROBUSTEZ.md).
MAX_PADDING = 300

# Trecho do aviso que o nó registra ao cortar um registro final incompleto.
TORN_TAIL_WARNING = "registro final incompleto"

MODES = {"one": "kill -9 de um nó sorteado", "leader": "kill -9 do líder",
         "all": "kill -9 de todos os nós"}


@dataclass
class DurabilityConfig:
    seed: int
    rounds: int
    nodes: int = 3
    writers: int = 4
    mode: str = "mixed"
    keep_folder: bool = False

    def replay_command(self) -> str:
        return (f"python3 tests/durability.py --seed {self.seed} --rounds {self.rounds} "
                f"--nodes {self.nodes} --writers {self.writers} --mode {self.mode}")


@dataclass
class DurabilityReport:
    config: DurabilityConfig
    problems: list = field(default_factory=list)
    rounds: Counter = field(default_factory=Counter)
    acknowledged: int = 0
    unknown: int = 0
    failed: int = 0
    verified_in_rounds: int = 0
    torn_tails_cut: int = 0
    elapsed: float = 0.0
    folder: str = ""
    final_check: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self) -> str:
        config = self.config
        lines = [f"semente: {config.seed}",
                 f"rodadas: {self.rounds.total()} ({config.nodes} nós, {config.writers} "
                 f"escritores, modo {config.mode})",
                 self.rounds.format(),
                 f"escritas confirmadas: {self.acknowledged}",
                 f"escritas de resultado desconhecido: {self.unknown}",
                 f"escritas recusadas sem chegar a um nó: {self.failed}",
                 f"escritas relidas logo depois de cada reinício: {self.verified_in_rounds}",
                 f"registros finais incompletos cortados na partida: {self.torn_tails_cut}",
                 f"conferência final no disco: {self.final_check or 'não feita'}",
                 f"tempo total: {self.elapsed:.1f} s"]
        if self.problems:
            lines.append(f"FALHOU: {len(self.problems)} problema(s)")
            lines.extend(bullet(problem) for problem in self.problems)
            lines.append(f"pasta com os logs dos nós: {self.folder}")
            lines.append(f"para repetir as rodadas: {config.replay_command()}")
        else:
            lines.append("resultado: nenhum problema encontrado")
        return "\n".join(line for line in lines if line != "")


class DurabilityRun:
    def __init__(self, config: DurabilityConfig, output: TextIO = sys.stdout):
        self.config = config
        self.output = output
        self.report = DurabilityReport(config)
        self.rng = random.Random(config.seed)
        self.cluster: Optional[LocalCluster] = None
        self.lock = threading.Lock()
        # chave -> (valor, índice) das escritas confirmadas ainda não relidas.
        self.unverified: dict = {}
        self.acknowledged: dict = {}
        self.unknown: dict = {}
        self.failed = 0
        self.writing = threading.Event()
        self.stopping = threading.Event()
        self.leader_hint = 0

    def say(self, text: str) -> None:
        print(text, file=self.output, flush=True)

    def run(self) -> DurabilityReport:
        started = time.monotonic()
        self.cluster = LocalCluster(self.config.nodes)
        writers = [threading.Thread(target=self._write_loop, args=(number,),
                                    name=f"escritor-{number}", daemon=True)
                   for number in range(self.config.writers)]
        try:
            self.say(f"durabilidade: semente {self.config.seed}, pasta "
                     f"{self.cluster.folder}")
            self.cluster.start_all()
            if self._wait_leader() is None:
                self.report.problems.append("nenhum líder na partida:\n"
                                            + self.cluster.describe())
                return self.report
            for thread in writers:
                thread.start()
            for number in range(1, self.config.rounds + 1):
                if not self._round(number):
                    break
            self.stopping.set()
            self.writing.set()
            for thread in writers:
                thread.join(timeout=CLIENT_TIMEOUT + 5)
            if not self.report.problems:
                self._final_check()
        finally:
            self.stopping.set()
            self.writing.set()
            self.report.elapsed = time.monotonic() - started
            self.report.folder = self.cluster.folder
            self.report.acknowledged = len(self.acknowledged)
            self.report.unknown = len(self.unknown)
            self.report.failed = self.failed
            self.report.torn_tails_cut = sum(node.log_text().count(TORN_TAIL_WARNING)
                                             for node in self.cluster.nodes)
            self.report.problems[:0] = self.cluster.problems
            keep = self.config.keep_folder or bool(self.report.problems)
            self.cluster.cleanup(keep_folder=keep)
        return self.report

    # ---- escritores --------------------------------------------------------

    def _write_loop(self, number: int) -> None:
        rng = random.Random(f"{self.config.seed}-escritor-{number}")
        sequence = 0
        while True:
            self.writing.wait()
            if self.stopping.is_set():
                return
            sequence += 1
            key = f"d{number}-{sequence}"
            value = {"escritor": number, "sequencia": sequence,
                     "texto": "á" * rng.randrange(MAX_PADDING)}
            nodes = self.cluster.nodes
            node = nodes[self.leader_hint % len(nodes)]
            result = client_request(node.host, node.port, "PUT", f"/kv/{key}",
                                    json.dumps({"value": value}).encode("utf-8"),
                                    CLIENT_TIMEOUT)
            with self.lock:
                if result.outcome == "ok" and result.status == 200:
                    entry = (value, result.payload["index"])
                    self.acknowledged[key] = entry
                    self.unverified[key] = entry
                elif result.outcome == "fail":
                    self.failed += 1
                else:
                    self.unknown[key] = value
            if result.outcome != "ok" or result.status != 200:
                # O nó parou ou não é mais quem comanda: tenta outro.
                self.leader_hint = rng.randrange(len(nodes))
                time.sleep(0.02)

    # ---- rodadas -----------------------------------------------------------

    def _wait_leader(self) -> Optional[int]:
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        while time.monotonic() < deadline:
            leader = self.cluster.agreed_leader()
            if leader is not None:
                self.leader_hint = leader
                return leader
            time.sleep(0.05)
        return None

    def _choose_mode(self, number: int) -> str:
        if self.config.mode == "mixed":
            return self.rng.choice(("one", "leader", "all"))
        if self.config.mode == "cycle":
            return ("leader", "all", "one")[(number - 1) % 3]
        return self.config.mode

    def _round(self, number: int) -> bool:
        """Roda uma rodada; devolve False se ela achou um problema."""
        cluster = self.cluster
        mode = self._choose_mode(number)
        write_time = self.rng.uniform(*WRITE_TIME)
        down_time = self.rng.uniform(*DOWN_TIME)
        fallback = self.rng.randrange(self.config.nodes)
        self.writing.set()
        time.sleep(write_time)

        terms_before = [status["term"] if status else 0 for status in cluster.statuses()]
        if mode == "all":
            victims = list(range(self.config.nodes))
            cluster.kill_many(victims)
        else:
            target = fallback
            if mode == "leader":
                leader = cluster.current_leader()
                target = leader if leader is not None else fallback
            victims = [target]
            cluster.kill(target)
        self.report.rounds.add(MODES[mode])
        time.sleep(down_time)

        self.writing.clear()
        for position in victims:
            cluster.start(position)
        with self.lock:
            acknowledged_count = len(self.acknowledged)
        self.say(f"rodada {number}: {write_time:.2f} s de escritas, {MODES[mode]} "
                 f"(nós {victims}), {down_time:.2f} s parado; "
                 f"{acknowledged_count} escritas confirmadas até agora")
        return self._check_round(number, victims, terms_before)

    def _check_round(self, number: int, victims: list, terms_before: list) -> bool:
        cluster = self.cluster
        if not cluster.wait_all_answering() or cluster.problems:
            return False
        for position in victims:
            status = cluster.nodes[position].status()
            if status is not None and status["term"] < terms_before[position]:
                self.report.problems.append(
                    f"rodada {number}: o nó {position} voltou com termo {status['term']}, "
                    f"menor que o de antes da queda ({terms_before[position]})")

        leader = self._wait_leader()
        if leader is None:
            self.report.problems.append(f"rodada {number}: nenhum líder em "
                                        f"{RECOVERY_TIMEOUT:.0f} s depois do reinício:\n"
                                        + cluster.describe())
            return False

        # Uma confirmação que chegar depois desta cópia é relida na próxima
        # rodada ou na conferência final.
        with self.lock:
            to_verify = dict(self.unverified)
            self.unverified.clear()
        highest = max((index for _, index in to_verify.values()), default=0)
        if not self._wait_committed(highest):
            self.report.problems.append(
                f"rodada {number}: o índice confirmado {highest} não voltou a ficar "
                f"comprometido em todos os nós em {RECOVERY_TIMEOUT:.0f} s:\n"
                + cluster.describe())
            return False

        node = cluster.nodes[leader]
        for key, (value, index) in sorted(to_verify.items()):
            result = client_request(node.host, node.port, "GET", f"/kv/{key}", None,
                                    CLIENT_TIMEOUT)
            if result.outcome != "ok":
                # Um 503 numa leitura não prova perda; a conferência final no
                # disco cobre esta chave.
                continue
            self.report.verified_in_rounds += 1
            if result.status != 200 or result.payload.get("value") != value:
                self.report.problems.append(
                    f"rodada {number}: escrita confirmada {key} (índice {index}) perdida "
                    f"depois do kill -9: GET no líder {leader} deu HTTP {result.status} "
                    f"{str(result.payload)[:200]}")
                return False
        return True

    def _wait_committed(self, index: int) -> bool:
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        while time.monotonic() < deadline:
            statuses = self.cluster.statuses()
            if all(status is not None and status["commit_index"] >= index
                   for status in statuses):
                return True
            time.sleep(0.05)
        return False

    # ---- conferência final -------------------------------------------------

    def _final_check(self) -> None:
        cluster = self.cluster
        report = self.report
        if cluster.wait_converged(RECOVERY_TIMEOUT, "duravel-marcador") is None:
            report.problems.append("o cluster não convergiu no fim:\n" + cluster.describe())
            return
        statuses = cluster.statuses()
        last_applied = min(status["last_applied"] for status in statuses)
        for position in range(self.config.nodes):
            code = cluster.terminate(position)
            if code not in (0, None):
                report.problems.append(f"o nó {position} saiu com código {code} ao parar "
                                       f"com SIGTERM no fim")
        try:
            replays = cluster.replay_logs(up_to=last_applied)
        except StorageError as error:
            report.problems.append(f"um log não pôde ser lido do disco no fim: {error}")
            return
        for replay in replays:
            missing = [key for key, (value, _) in self.acknowledged.items()
                       if replay.data.get(key) != value]
            if missing:
                report.problems.append(
                    f"{len(missing)} escrita(s) confirmada(s) ausente(s) ou com outro "
                    f"valor no log do nó {replay.node_id}, por exemplo "
                    f"{sorted(missing)[:10]}")
            wrong = [key for key, value in self.unknown.items()
                     if key in replay.data and replay.data[key] != value]
            if wrong:
                report.problems.append(f"escritas de resultado desconhecido com valor "
                                       f"errado no nó {replay.node_id}: {wrong[:10]}")
            if replay.entries != replays[0].entries:
                report.problems.append(f"os logs dos nós {replays[0].node_id} e "
                                       f"{replay.node_id} são diferentes no fim")
        crash_lines = cluster.crash_lines()
        if crash_lines:
            report.problems.append("linhas de erro nos logs dos nós:\n"
                                   + indent("\n".join(crash_lines[:20])))
        if not report.problems:
            present = sum(1 for key in self.unknown if key in replays[0].data)
            report.final_check = (f"{len(self.acknowledged)} escritas confirmadas presentes "
                                  f"nos {len(replays)} nós (logs iguais, {last_applied} "
                                  f"entradas aplicadas); {present} das {len(self.unknown)} "
                                  f"de resultado desconhecido foram aplicadas")


def run_durability(config: DurabilityConfig,
                   output: Optional[TextIO] = None) -> DurabilityReport:
    """Roda as rodadas de `config` e devolve o relatório (já impresso em `output`)."""
    output = output or sys.stdout
    report = DurabilityRun(config, output).run()
    print(report.format(), file=output, flush=True)
    return report


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tests/durability.py",
        description="kill -9 em momentos sorteados durante escritas intensas; confere que "
                    "nada confirmado se perde e que todo nó volta a partir.")
    parser.add_argument("--rounds", type=int, default=20,
                        help="quantidade de rodadas de kill -9 (padrão: %(default)s)")
    parser.add_argument("--seed", type=int, default=None,
                        help="semente das rodadas (padrão: sorteada e impressa)")
    parser.add_argument("--nodes", type=int, default=3,
                        help="quantidade de nós (padrão: %(default)s)")
    parser.add_argument("--writers", type=int, default=4,
                        help="escritores concorrentes (padrão: %(default)s)")
    parser.add_argument("--mode", choices=("one", "leader", "all", "mixed", "cycle"),
                        default="mixed",
                        help="quem morre em cada rodada: um nó sorteado, o líder, todos, "
                             "um sorteio entre os três, ou os três em rodízio (padrão: "
                             "%(default)s)")
    parser.add_argument("--keep", action="store_true",
                        help="mantém a pasta com dados e logs dos nós mesmo sem falha")
    args = parser.parse_args(argv)
    exit_on_sigterm()

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    config = DurabilityConfig(seed=seed, rounds=args.rounds, nodes=args.nodes,
                              writers=args.writers, mode=args.mode, keep_folder=args.keep)
    report = run_durability(config)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
