"""Cenários do Raft na simulação determinística de raft_example.py.

Cada teste monta um cenário com nós, rede e relógio simulados, e o
SafetyChecker confere as propriedades de segurança depois de cada evento: um
teste que termina sem exceção passou também por essa conferência.

Os cronogramas aleatórios rodam RAFT_SIM_SEEDS sementes (padrão 500); para
rodar dezenas de milhares, use a variável ou `python3 raft_example.py --verify N`.
"""

import itertools
import os
import sys
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from raft_distribuido import (  # noqa: E402
    MAX_ENTRIES_PER_APPEND,
    AppendEntries,
    RaftCore,
    RequestVoteReply,
    Role,
)
from raft_example import (  # noqa: E402
    FAULT_WEIGHTS,
    ClientResponse,
    Cluster,
    FaultInjector,
    SafetyViolation,
    SimConfig,
    SimulationError,
    Workload,
    check_linearizability,
    run_random_schedule,
    verify,
)

CI_SEEDS = int(os.environ.get("RAFT_SIM_SEEDS", "500"))


def elect(cluster: Cluster, timeout: float = 5.0) -> str:
    if not cluster.run_until(lambda: cluster.leader() is not None, timeout):
        raise AssertionError(f"nenhum líder em {timeout} s (semente {cluster.seed})")
    return cluster.leader()


def settle(cluster: Cluster, timeout: float = 5.0) -> None:
    """Roda até os nós no ar estarem em dia com o líder."""
    alive = [node_id for node_id, node in cluster.nodes.items() if node.up]
    if not cluster.run_until(lambda: cluster.in_sync(alive), timeout):
        raise AssertionError(f"os nós {alive} não alcançaram o líder em {timeout} s")


def write(cluster: Cluster, client, key: str, value, timeout: float = 5.0, **options):
    operation = client.submit("put", key, value, **options)
    cluster.run_until(lambda: client.idle, timeout)
    return operation


def commands(core_or_entries) -> list:
    """Os comandos (sem as entradas vazias) de um log."""
    entries = core_or_entries.log if isinstance(core_or_entries, RaftCore) else core_or_entries
    return [entry.command for entry in entries if entry.command is not None]


def campaign_until_leader(cluster: Cluster, node_id: str, attempts: int = 20) -> None:
    """Faz `node_id` se candidatar até ganhar (cada tentativa espera 0,3 s)."""
    for _ in range(attempts):
        cluster.campaign(node_id)
        if cluster.run_until(lambda: cluster.leader() == node_id, 0.3):
            return
    raise AssertionError(f"{node_id} não venceu nenhuma de {attempts} eleições")


class ElectionTests(unittest.TestCase):
    """Eleição de líder (§5.2)."""

    def test_first_election_timing(self):
        config = SimConfig()
        slow = 0
        for seed in range(40):
            cluster = Cluster(5, seed=seed)
            campaigning = cluster.run_until(
                lambda: any(node.core.role != Role.FOLLOWER for node in cluster.nodes.values()),
                1.0)
            self.assertTrue(campaigning)
            self.assertGreaterEqual(cluster.now, config.election_timeout_min)
            self.assertLessEqual(cluster.now, config.election_timeout_max)
            elect(cluster, 3 * config.election_timeout_max)
            if cluster.now > config.election_timeout_max:
                slow += 1
        # Um voto dividido adia a eleição para o próximo timeout, mas é raro.
        self.assertLessEqual(slow, 4)

    def test_new_leader_after_partition(self):
        for seed in range(10):
            with self.subTest(seed=seed):
                cluster = Cluster(5, seed=seed)
                old = elect(cluster)
                old_term = cluster.core(old).current_term
                cluster.isolate(old)
                elected = cluster.run_until(lambda: cluster.leader() not in (None, old), 3.0)
                self.assertTrue(elected)
                new = cluster.leader()
                self.assertGreater(cluster.core(new).current_term, old_term)
                cluster.heal()
                self.assertTrue(cluster.run_until(cluster.converged, 5.0))
                self.assertEqual(cluster.core(old).role, Role.FOLLOWER)

    def test_no_leader_change_without_faults(self):
        for seed in range(5):
            with self.subTest(seed=seed):
                cluster = Cluster(5, seed=seed)
                leader = elect(cluster)
                term = cluster.core(leader).current_term
                cluster.run_for(30.0)
                self.assertEqual(cluster.leader(), leader)
                for node in cluster.nodes.values():
                    self.assertEqual(node.core.current_term, term)

    def test_leader_after_minority_fails(self):
        config = SimConfig()
        ids = Cluster(5).node_ids
        subsets = [subset for size in range(3) for subset in itertools.combinations(ids, size)]
        for seed, crashed in enumerate(subsets):
            with self.subTest(crashed=crashed):
                cluster = Cluster(5, seed=seed)
                elect(cluster)
                for node_id in crashed:
                    cluster.crash(node_id)
                # Quatro timeouts máximos cobrem um timeout até a eleição e
                # alguns votos divididos.
                self.assertTrue(cluster.run_until(lambda: cluster.leader() is not None,
                                                  4 * config.election_timeout_max))
                self.assertNotIn(cluster.leader(), crashed)
                operation = write(cluster, cluster.client("c1"), "k", 1)
                self.assertEqual(operation.status, "ok")

    def test_stale_vote_reply_ignored(self):
        # N1 pede votos no termo 1; a concessão de N2 fica retida. N2 vence o
        # termo 2 com N3. N1, sem ter visto o termo 2, se candidata no termo 2
        # e só então recebe a concessão velha, do termo 1: ela não pode contar.
        cluster = Cluster(3, seed=4)
        n1, n2, n3 = cluster.node_ids
        cluster.hold(lambda source, destination, message: source == n2
                     and destination == n1 and isinstance(message, RequestVoteReply))
        cluster.partition([n1, n2], [n3])
        cluster.campaign(n1)
        cluster.run_for(0.05)
        self.assertEqual(len(cluster.held), 1)
        cluster.partition([n1], [n2, n3])
        campaign_until_leader(cluster, n2)
        self.assertEqual(cluster.core(n2).current_term, 2)
        cluster.campaign(n1)
        self.assertEqual(cluster.core(n1).current_term, 2)
        cluster.heal()
        cluster.release()
        cluster.run_for(0.5)
        self.assertEqual(cluster.leaders(), [n2])
        self.assertEqual(cluster.checker.leader_of_term[2], n2)

    def test_late_vote_elects_older_term(self):
        # N3 pede votos no termo 1 e a concessão de N2 atrasa. Enquanto isso,
        # N2 vence o termo 2. A concessão chega com N3 ainda candidato no termo
        # 1: N3 vira líder do termo 1, legitimamente, ao lado do líder do termo
        # 2. Ele não tem a entrada vazia comprometida no termo 2, e não precisa
        # ter: a Leader Completeness vale para líderes de termos maiores.
        cluster = Cluster(3, seed=4)
        n1, n2, n3 = cluster.node_ids
        cluster.hold(lambda source, destination, message: source == n2
                     and destination == n3 and isinstance(message, RequestVoteReply))
        cluster.partition([n2, n3], [n1])
        cluster.campaign(n3)
        cluster.run_for(0.05)
        cluster.partition([n1, n2], [n3])
        campaign_until_leader(cluster, n2)
        self.assertTrue(cluster.run_until(lambda: cluster.core(n2).commit_index == 1, 1.0))
        self.assertEqual(cluster.core(n3).role, Role.CANDIDATE)
        self.assertEqual(cluster.core(n3).current_term, 1)
        # Em 1 ms só a concessão retida chega (a latência mínima é 2 ms).
        cluster.heal()
        cluster.release()
        cluster.run_for(0.001)
        self.assertEqual(cluster.core(n3).role, Role.LEADER)
        self.assertEqual(cluster.core(n3).current_term, 1)
        self.assertEqual(cluster.core(n2).role, Role.LEADER)
        self.assertEqual(cluster.core(n2).current_term, 2)
        self.assertTrue(cluster.run_until(cluster.converged, 5.0))
        self.assertEqual(cluster.leader(), n2)

    def test_rejected_requests_keep_timer(self):
        # A tem o log mais atualizado, B está atrasado e C está fora. B acorda
        # sempre antes de A. Se os pedidos de voto de B (negados) reiniciassem
        # o timer de A, A nunca se candidataria e ninguém venceria.
        cluster = Cluster(3, seed=6)
        a, b, c = cluster.node_ids
        cluster.campaign(a)
        settle(cluster)
        cluster.isolate(b)
        client = cluster.client("c1")
        for value in range(3):
            self.assertEqual(write(cluster, client, "k", value, target=a).status, "ok")
        cluster.crash(c)
        cluster.crash(a)
        cluster.restart(a)
        core_b = cluster.core(b)
        core_b.election_timeout_min, core_b.election_timeout_max = 0.15, 0.16
        core_b.election_deadline = cluster.now
        cluster.heal()
        self.assertTrue(cluster.run_until(lambda: cluster.leader() == a,
                                          3 * SimConfig().election_timeout_max))


class AgreementTests(unittest.TestCase):
    """Replicação do log (§5.3) com e sem falhas."""

    def test_agreement_all_nodes(self):
        cluster = Cluster(5, seed=1)
        elect(cluster)
        client = cluster.client("c1")
        for value in range(5):
            self.assertEqual(write(cluster, client, f"k{value}", value).status, "ok")
        settle(cluster)
        expected = {f"k{value}": value for value in range(5)}
        for node in cluster.nodes.values():
            self.assertEqual(node.kv.data, expected)
            self.assertEqual(len(commands(node.core)), 5)

    def test_agreement_with_follower_down(self):
        cluster = Cluster(5, seed=2)
        leader = elect(cluster)
        settle(cluster)
        follower = next(node_id for node_id in cluster.node_ids if node_id != leader)
        cluster.crash(follower)
        client = cluster.client("c1")
        for value in range(5):
            self.assertEqual(write(cluster, client, "k", value).status, "ok")
        settle(cluster)
        self.assertEqual(len(cluster.nodes[follower].storage.entries), 1)
        cluster.restart(follower)
        settle(cluster)
        self.assertEqual(cluster.nodes[follower].kv.data, {"k": 4})

    def test_no_agreement_without_majority(self):
        cluster = Cluster(5, seed=3)
        leader = elect(cluster)
        settle(cluster)
        followers = [node_id for node_id in cluster.node_ids if node_id != leader]
        for node_id in followers[:3]:
            cluster.crash(node_id)
        commit_before = cluster.core(leader).commit_index
        operation = write(cluster, cluster.client("c1"), "k", 1, timeout=10.0, target=leader)
        self.assertEqual(operation.status, "unknown")
        for node_id in (leader, followers[3]):
            core = cluster.core(node_id)
            self.assertEqual(core.commit_index, commit_before)
            self.assertEqual(cluster.nodes[node_id].kv.data, {})
        cluster.restart(followers[0])
        elect(cluster)
        self.assertEqual(write(cluster, cluster.client("c2"), "j", 2).status, "ok")

    def test_many_concurrent_proposals(self):
        cluster = Cluster(5, seed=4)
        elect(cluster)
        clients = [cluster.client(f"c{number}") for number in range(5)]
        remaining = {client.client_id: 20 for client in clients}

        def next_write(client, operation=None):
            if remaining[client.client_id]:
                remaining[client.client_id] -= 1
                value = 20 - remaining[client.client_id]
                client.submit("put", client.client_id, value, on_done=next_write)

        for client in clients:
            next_write(client)
        finished = cluster.run_until(
            lambda: not any(remaining.values()) and all(client.idle for client in clients),
            20.0)
        self.assertTrue(finished)
        self.assertTrue(all(operation.status == "ok" for operation in cluster.history))
        self.assertEqual(len(cluster.history), 100)
        settle(cluster)
        expected = {client.client_id: 20 for client in clients}
        for node in cluster.nodes.values():
            self.assertEqual(node.kv.data, expected)
            self.assertEqual(len(commands(node.core)), 100)
        self.assertTrue(check_linearizability(cluster.history).ok)

    def test_old_leader_entries_replaced(self):
        cluster = Cluster(5, seed=5)
        old = elect(cluster)
        settle(cluster)
        cluster.isolate(old)
        for value in range(3):
            self.assertIsNotNone(cluster.propose(old, {"op": "put", "key": "lost",
                                                       "value": value}))
        self.assertEqual(len(commands(cluster.core(old))), 3)
        self.assertTrue(cluster.run_until(lambda: cluster.leader() not in (None, old), 3.0))
        client = cluster.client("c1")
        for value in range(2):
            self.assertEqual(write(cluster, client, "kept", value).status, "ok")
        cluster.heal()
        self.assertTrue(cluster.run_until(cluster.converged, 5.0))
        old_commands = commands(cluster.core(old))
        self.assertEqual(old_commands, commands(cluster.core(cluster.leader())))
        self.assertNotIn("lost", [command["key"] for command in old_commands])
        self.assertEqual(cluster.nodes[old].kv.data, {"kept": 1})

    def test_divergent_follower_catches_up(self):
        # F fica isolado como líder e acrescenta 20 entradas que ninguém mais
        # tem, enquanto os outros comprometem 100. A dica de conflito deixa o
        # líder novo pular cada trecho de uma vez; recuar um índice por
        # rejeição custaria uma ida e volta por entrada.
        cluster = Cluster(5, seed=11)
        follower = elect(cluster)
        settle(cluster)
        cluster.isolate(follower)
        for value in range(20):
            cluster.propose(follower, {"op": "put", "key": "divergent", "value": value})
        self.assertTrue(cluster.run_until(lambda: cluster.leader() not in (None, follower),
                                          3.0))
        client = cluster.client("c1")
        for value in range(100):
            self.assertEqual(write(cluster, client, "k", value).status, "ok")

        sent = []

        def count(source, destination, message):
            if isinstance(message, AppendEntries) and destination == follower:
                sent.append(message.term)
            return False

        cluster.network.filters.append(count)
        cluster.heal()
        self.assertTrue(cluster.run_until(cluster.converged, 5.0))
        final_term = cluster.core(cluster.leader()).current_term
        sent_in_final_term = sent.index(final_term)
        # Uma sondagem rejeitada (o log de F é curto), outra rejeitada (termo
        # diferente no fim do log de F), e a que leva as entradas.
        self.assertLessEqual(len(sent) - sent_in_final_term, 3)
        self.assertEqual(cluster.nodes[follower].kv.data, {"k": 99})


class PersistenceTests(unittest.TestCase):
    """O que foi gravado antes de uma queda sobrevive a ela (Figura 2)."""

    def test_acknowledged_writes_survive_crashes(self):
        crash_kinds = {kind: FAULT_WEIGHTS[kind] for kind in
                       ("queda", "queda no meio de um Ready", "queda de todos os nós")}
        for seed in range(30):
            with self.subTest(seed=seed):
                cluster = Cluster(3 + seed % 3, seed=seed)
                injector = FaultInjector(cluster, cluster.rng, mean_interval=0.3,
                                         weights=crash_kinds)
                workload = Workload(cluster, cluster.rng, client_count=2, keys=["x", "y"])
                workload.start()
                injector.start(until=4.0)
                cluster.run_for(4.0)
                injector.stop()
                workload.stop()
                self.assertTrue(cluster.run_until(workload.idle, 5.0))
                self.assertTrue(cluster.run_until(cluster.converged, 20.0))
                acknowledged = [(operation.client_id, operation.index, operation.term)
                                for operation in cluster.history
                                if operation.status == "ok" and operation.kind != "get"]
                self.assertGreater(len(acknowledged), 0)
                for node in cluster.nodes.values():
                    for client_id, index, term in acknowledged:
                        entry = node.core.entry_at(index)
                        self.assertEqual(entry.term, term)
                        self.assertEqual(entry.command["client_id"], client_id)
                self.assertTrue(check_linearizability(cluster.history).ok)

    def test_vote_survives_crash(self):
        # B vota em A e cai logo depois. Ao voltar, B ainda lembra o voto e
        # nega o pedido de C no mesmo termo: no máximo um líder por termo.
        for crash_before_reply in (False, True):
            with self.subTest(crash_before_reply=crash_before_reply):
                cluster = Cluster(3, seed=7)
                a, b, c = cluster.node_ids
                cluster.network.filters.append(
                    lambda source, destination, message: {source, destination} == {a, c})
                if crash_before_reply:
                    # A queda vem depois de gravar o voto e antes de enviar a resposta.
                    cluster.crash_in_next_ready(b, messages_sent=0)
                cluster.campaign(a)
                self.assertTrue(cluster.run_until(
                    lambda: cluster.nodes[b].storage.voted_for == a, 0.1))
                cluster.crash(b)
                cluster.restart(b)
                self.assertEqual(cluster.core(b).current_term, 1)
                self.assertEqual(cluster.core(b).voted_for, a)
                cluster.campaign(c)
                self.assertEqual(cluster.core(c).current_term, 1)
                cluster.run_for(0.1)
                self.assertNotEqual(cluster.core(c).role, Role.LEADER)
                self.assertNotEqual(cluster.checker.leader_of_term.get(1), c)

    def test_full_restart_keeps_terms(self):
        cluster = Cluster(3, seed=8)
        elect(cluster)
        client = cluster.client("c1")
        for value in range(3):
            self.assertEqual(write(cluster, client, "k", value).status, "ok")
        settle(cluster)
        terms_before = {node_id: node.core.current_term
                        for node_id, node in cluster.nodes.items()}
        highest = max(terms_before.values())
        for node_id in cluster.node_ids:
            cluster.crash(node_id)
        a, b, c = cluster.node_ids
        cluster.restart(a)
        cluster.restart(c)
        for node_id in (a, c):
            self.assertEqual(cluster.core(node_id).current_term, terms_before[node_id])
        leader = elect(cluster)
        self.assertGreater(cluster.core(leader).current_term, highest)
        for value in range(3, 6):
            self.assertEqual(write(cluster, client, "k", value).status, "ok")
        cluster.restart(b)
        self.assertTrue(cluster.run_until(cluster.converged, 5.0))
        self.assertEqual(len(commands(cluster.core(b))), 6)
        self.assertEqual(cluster.nodes[b].kv.data, {"k": 5})


class FigureEightTests(unittest.TestCase):
    """A regra de commit (§5.4.2, Figura 8 do artigo).

    Um líder só compromete, contando réplicas, entradas do próprio termo.
    Aqui o líder S1 do termo novo manda a S3 e S4 um primeiro lote só com
    entradas antigas, do termo 1. Isso acontece porque um AppendEntries leva
    no máximo MAX_ENTRIES_PER_APPEND entradas, e a entrada vazia do termo novo
    fica para o lote seguinte. As entradas antigas ficam em S1, S3 e S4, a
    maioria, mas não estão comprometidas: S5, com uma entrada do termo 2,
    ainda pode ser eleito e apagá-las.
    """

    def build(self, seed: int = 8) -> tuple:
        """Monta a situação acima; devolve o cluster e o índice do fim do primeiro lote."""
        batch = MAX_ENTRIES_PER_APPEND
        cluster = Cluster(5, seed=seed)
        s1, s2, s3, s4, s5 = cluster.node_ids
        # 1. S1 lidera o termo 1, e a entrada vazia dele (índice 1) chega a todos.
        cluster.campaign(s1)
        settle(cluster, 2.0)
        # 2. S2 cai de vez. S1, isolado, acrescenta entradas que ninguém mais recebe.
        cluster.crash(s2)
        cluster.isolate(s1)
        for number in range(batch + 88):
            cluster.propose(s1, {"op": "put", "key": "x", "value": number})
        cluster.crash(s1)
        # 3. S5 vence o termo 2 com S3 e S4, mas a entrada vazia dele não sai de S5.
        cluster.heal()

        def from_s5(source, destination, message):
            return source == s5 and isinstance(message, AppendEntries)

        cluster.network.filters.append(from_s5)
        campaign_until_leader(cluster, s5)
        cluster.crash(s5)
        cluster.network.filters.remove(from_s5)
        self.assertEqual(cluster.nodes[s5].storage.entries[-1].term, 2)
        # 4. S1 volta e vence. S3 e S4 recebem o primeiro lote (índices 2 a
        #    batch + 1, todos do termo 1); os lotes seguintes se perdem.
        cluster.restart(s1)
        last_old_index = 1 + batch + 88

        def later_batches(source, destination, message):
            return (source == s1 and isinstance(message, AppendEntries)
                    and batch + 1 <= message.prev_log_index < last_old_index)

        cluster.network.filters.append(later_batches)
        campaign_until_leader(cluster, s1)
        leader = cluster.core(s1)
        self.assertTrue(cluster.run_until(
            lambda: leader.role == Role.LEADER and leader.match_index[s3] >= batch + 1
            and leader.match_index[s4] >= batch + 1, 1.0))
        return cluster, batch + 1, later_batches

    def test_old_entries_on_majority_uncommitted(self):
        cluster, first_batch_end, _ = self.build()
        s1, s2, s3, s4, s5 = cluster.node_ids
        # As entradas 2..first_batch_end estão em S1, S3 e S4, mas S1 não as
        # compromete: nenhuma entrada do termo dele está na maioria. (S1 voltou
        # de uma queda, então nem o índice 1 ele sabe que está comprometido.)
        self.assertLess(cluster.core(s1).commit_index, 2)
        for node_id in (s3, s4):
            self.assertEqual(cluster.core(node_id).last_log_index, first_batch_end)
            self.assertEqual(cluster.nodes[node_id].kv.last_applied, 1)
        # 5. S1 cai. S5 volta e vence: o log dele termina no termo 2, mais
        #    atualizado que o de S3 e S4 (termo 1), e as entradas de S1 somem.
        cluster.crash(s1)
        cluster.restart(s5)
        campaign_until_leader(cluster, s5)
        settle(cluster)
        for node_id in (s3, s4, s5):
            self.assertEqual(cluster.core(node_id).term_at(2), 2)
            self.assertNotIn("x", cluster.nodes[node_id].kv.data)
        cluster.restart(s1)
        cluster.restart(s2)
        self.assertTrue(cluster.run_until(cluster.converged, 5.0))
        self.assertEqual(commands(cluster.core(s1)), [])

    def test_current_term_entry_commits_older(self):
        cluster, _, later_batches = self.build()
        s1, s2, s3, s4, s5 = cluster.node_ids
        # Sem o filtro, a entrada vazia do termo de S1 chega à maioria e
        # compromete, junto, todas as entradas antigas antes dela.
        cluster.network.filters.remove(later_batches)
        leader = cluster.core(s1)
        self.assertTrue(cluster.run_until(
            lambda: leader.commit_index == leader.last_log_index, 1.0))
        # S5 não vence mais: S3 e S4 têm uma entrada do termo de S1, mais
        # atualizada que a do termo 2 no fim do log de S5.
        cluster.crash(s1)
        cluster.restart(s5)
        cluster.campaign(s5)
        cluster.run_for(0.05)
        self.assertNotEqual(cluster.core(s5).role, Role.LEADER)
        self.assertTrue(cluster.run_until(lambda: cluster.leader() in (s3, s4), 3.0))
        settle(cluster)
        for node_id in (s3, s4, s5):
            self.assertEqual(cluster.nodes[node_id].kv.data,
                             {"x": MAX_ENTRIES_PER_APPEND + 87})


class NetworkTests(unittest.TestCase):
    """Mensagens perdidas, duplicadas, atrasadas e fora de ordem."""

    def test_agreement_unreliable_network(self):
        for seed in range(5):
            with self.subTest(seed=seed):
                config = SimConfig(drop_rate=0.2, duplicate_rate=0.2, max_delay=0.05,
                                   wire="json")
                cluster = Cluster(5, seed=seed, config=config)
                workload = Workload(cluster, cluster.rng, client_count=3, keys=["x", "y"])
                workload.start()
                cluster.run_for(10.0)
                workload.stop()
                self.assertTrue(cluster.run_until(workload.idle, 5.0))
                cluster.network.drop_rate = cluster.network.duplicate_rate = 0.0
                self.assertTrue(cluster.run_until(cluster.converged, 10.0))
                confirmed = [operation for operation in cluster.history
                             if operation.status == "ok"]
                self.assertGreater(len(confirmed), 10)
                self.assertGreater(cluster.stats["mensagens perdidas"], 100)
                self.assertGreater(cluster.stats["mensagens duplicadas"], 100)
                cluster.checker.check_final()
                self.assertTrue(check_linearizability(cluster.history).ok)

    def test_churn(self):
        churn = {kind: FAULT_WEIGHTS[kind] for kind in
                 ("queda", "queda no meio de um Ready", "pausa", "partição")}
        for seed in range(10):
            with self.subTest(seed=seed):
                cluster = Cluster(5, seed=seed)
                injector = FaultInjector(cluster, cluster.rng, mean_interval=0.2,
                                         weights=churn)
                workload = Workload(cluster, cluster.rng, client_count=3, keys=["x", "y"])
                workload.start()
                injector.start(until=5.0)
                cluster.run_for(5.0)
                injector.stop()
                workload.stop()
                self.assertTrue(cluster.run_until(workload.idle, 5.0))
                self.assertTrue(cluster.run_until(cluster.converged, 20.0))
                self.assertGreater(sum(injector.faults.values()), 10)
                cluster.checker.check_final()
                self.assertTrue(check_linearizability(cluster.history).ok)

    def test_stale_append_keeps_entries(self):
        # Uma cópia atrasada de um AppendEntries antigo (prev=1, só a entrada
        # 2) ou um heartbeat com prev=1 não apagam nada depois do índice 2: o
        # líder pode já ter contado essas entradas como replicadas.
        cluster = Cluster(3, seed=9)
        leader = elect(cluster)
        client = cluster.client("c1")
        for value in range(3):
            write(cluster, client, "k", value)
        settle(cluster)
        follower = next(node_id for node_id in cluster.node_ids if node_id != leader)
        core = cluster.core(leader)
        last = cluster.core(follower).last_log_index
        stale = [
            AppendEntries(term=core.current_term, leader_id=leader, prev_log_index=1,
                          prev_log_term=core.term_at(1), entries=[core.entry_at(2)],
                          leader_commit=1),
            AppendEntries(term=core.current_term, leader_id=leader, prev_log_index=1,
                          prev_log_term=core.term_at(1), entries=[], leader_commit=1),
        ]
        for message in stale:
            cluster.inject_message(leader, follower, message)
            cluster.run_for(0.05)
            self.assertEqual(cluster.core(follower).last_log_index, last)
            self.assertEqual(cluster.core(leader).match_index[follower], last)

    def test_old_leader_append_after_commit(self):
        # S3 vence o termo 2 sem a entrada X, que só S1 e S2 têm. Depois S1
        # vence o termo 3 e compromete X. Um AppendEntries atrasado de S3, do
        # termo 2, chega a S2, que ainda está no termo 2: S2 obedece e apaga X.
        # É permitido, porque S2 nunca aplicou X; ele recebe X de volta de S1.
        cluster = Cluster(5, seed=14)
        s1, s2, s3, s4, s5 = cluster.node_ids
        cluster.campaign(s1)
        settle(cluster, 2.0)

        # No termo 1, X vai só de S1 para S2. A entrada vazia de S3 no termo
        # 2 não sai de S3 (a cópia para S2 fica retida). Depois do termo 1,
        # S1 e S2 não se falam, para que S2 continue no termo 2.
        def blocked(source, destination, message):
            s1_term = cluster.core(s1).current_term
            x_to_others = source == s1 and destination in (s3, s4, s5) and s1_term == 1 \
                and isinstance(message, AppendEntries)
            from_s3 = source == s3 and destination in (s4, s5) \
                and isinstance(message, AppendEntries)
            s1_with_s2 = {source, destination} == {s1, s2} and s1_term > 1
            return x_to_others or from_s3 or s1_with_s2

        cluster.network.filters.append(blocked)
        cluster.hold(lambda source, destination, message: source == s3
                     and destination == s2 and isinstance(message, AppendEntries))
        cluster.propose(s1, {"op": "put", "key": "x", "value": "X"})
        self.assertTrue(cluster.run_until(
            lambda: cluster.core(s2).last_log_index == 2, 0.1))
        campaign_until_leader(cluster, s3)
        self.assertEqual(cluster.core(s3).current_term, 2)
        self.assertEqual(cluster.core(s2).current_term, 2)
        campaign_until_leader(cluster, s1)
        leader = cluster.core(s1)
        self.assertTrue(cluster.run_until(
            lambda: leader.commit_index == leader.last_log_index, 1.0))
        self.assertEqual(cluster.checker.committed[1][2], leader.current_term)
        self.assertEqual(cluster.core(s2).current_term, 2)
        self.assertEqual(cluster.core(s2).term_at(2), 1)

        cluster.release()
        cluster.run_for(0.02)
        self.assertEqual(cluster.core(s2).term_at(2), 2)
        self.assertEqual(cluster.nodes[s2].kv.last_applied, 1)
        cluster.network.filters.remove(blocked)
        self.assertTrue(cluster.run_until(cluster.converged, 5.0))
        self.assertEqual(cluster.nodes[s2].kv.data, {"x": "X"})

    def test_follower_commit_clamped(self):
        # A tem uma entrada 10 do termo 1 que ninguém mais tem. B, líder do
        # termo novo, manda um AppendEntries vazio com prev=(9, termo 1) e
        # leader_commit=12: A só pode comprometer até 9, o que o pedido conferiu.
        cluster = Cluster(3, seed=10)
        a, b, c = cluster.node_ids
        cluster.campaign(a)
        settle(cluster)
        client = cluster.client("c1")
        for value in range(8):
            write(cluster, client, "k", value, target=a)
        settle(cluster)
        self.assertEqual(cluster.core(a).last_log_index, 9)
        cluster.isolate(a)
        cluster.propose(a, {"op": "put", "key": "k", "value": "stale"})
        cluster.crash(a)
        cluster.heal()
        campaign_until_leader(cluster, b)
        write(cluster, client, "k", 100)
        settle(cluster)
        leader = cluster.core(b)
        self.assertEqual(leader.commit_index, 11)

        def to_a(source, destination, message):
            return source == b and destination == a

        cluster.network.filters.append(to_a)
        cluster.restart(a)
        cluster.inject_message(b, a, AppendEntries(
            term=leader.current_term, leader_id=b, prev_log_index=9, prev_log_term=1,
            entries=[], leader_commit=leader.commit_index))
        cluster.run_for(0.05)
        self.assertEqual(cluster.core(a).commit_index, 9)
        self.assertEqual(cluster.nodes[a].kv.data, {"k": 7})
        cluster.network.filters.remove(to_a)
        self.assertTrue(cluster.run_until(cluster.converged, 5.0))
        self.assertEqual(cluster.nodes[a].kv.data, {"k": 100})

    def test_stale_rejection_ignored(self):
        # Uma rejeição que não responde à sondagem atual não faz next_index
        # recuar; next_index nunca fica abaixo de match_index + 1.
        cluster = Cluster(3, seed=12)
        leader = elect(cluster)
        client = cluster.client("c1")
        for value in range(3):
            write(cluster, client, "k", value)
        settle(cluster)
        follower = next(node_id for node_id in cluster.node_ids if node_id != leader)
        core = cluster.core(leader)
        match_before = core.match_index[follower]
        for prev_log_index in (match_before + 5, 0, match_before + 1):
            cluster.inject_message(leader, follower, AppendEntries(
                term=core.current_term, leader_id=leader, prev_log_index=prev_log_index,
                prev_log_term=1 if prev_log_index else 0, entries=[], leader_commit=0))
            cluster.run_for(0.02)
            self.assertGreaterEqual(core.match_index[follower], match_before)
            self.assertGreater(core.next_index[follower], core.match_index[follower])
        self.assertEqual(write(cluster, client, "k", 10).status, "ok")
        settle(cluster)

    def test_client_retry_applied_once(self):
        # O líder aplica o delete de x, mas cai antes de a resposta chegar ao
        # cliente. O cliente repete o pedido (mesma sessão e sequência) no
        # líder novo: a resposta é a da primeira aplicação (x existia), e o
        # comando não é executado de novo.
        cluster = Cluster(3, seed=13)
        leader = elect(cluster)
        client = cluster.client("c1")
        self.assertEqual(write(cluster, client, "x", 1).status, "ok")
        settle(cluster)

        def reply_from_leader(source, destination, message):
            return source == leader and isinstance(message, ClientResponse)

        cluster.network.filters.append(reply_from_leader)
        operation = client.submit("delete", "x", target=leader)
        self.assertTrue(cluster.run_until(
            lambda: "x" not in cluster.nodes[leader].kv.data, 1.0))
        cluster.crash(leader)
        self.assertTrue(cluster.run_until(lambda: client.idle, 5.0))
        self.assertEqual(operation.status, "ok")
        self.assertIs(operation.output, True)
        self.assertGreater(operation.attempts, 1)
        new_leader = cluster.leader()
        deletes = [command for command in commands(cluster.core(new_leader))
                   if command["op"] == "delete"]
        self.assertGreaterEqual(len(deletes), 1)
        self.assertEqual({command["sequence"] for command in deletes}, {2})
        self.assertEqual(cluster.nodes[new_leader].kv.sessions["c1"][0], 2)


class DeterminismTests(unittest.TestCase):

    def record(self, seed: int) -> tuple:
        events = []
        report = run_random_schedule(seed, listeners=(events.append,))
        return events, report

    def test_same_seed_same_run(self):
        for seed in (1, 2, 3):
            with self.subTest(seed=seed):
                first_events, first_report = self.record(seed)
                second_events, second_report = self.record(seed)
                self.assertGreater(len(first_events), 100)
                self.assertEqual(first_events, second_events)
                self.assertEqual(first_report, second_report)

    def test_different_seeds_differ(self):
        self.assertNotEqual(self.record(1)[0], self.record(2)[0])


class RandomScheduleTests(unittest.TestCase):
    """Cronogramas aleatórios, com todas as falhas misturadas."""

    def test_random_schedules(self):
        summary = verify(1, CI_SEEDS)
        print(f"\n[cronogramas aleatórios] {summary.format()}", file=sys.stderr)
        failures = "\n\n".join(f"semente {seed}:\n{text}"
                               for seed, text in summary.failures[:2])
        self.assertEqual(summary.failures, [], failures)
        self.assertEqual(summary.schedules, CI_SEEDS)
        for kind in FAULT_WEIGHTS:
            self.assertGreater(summary.faults[kind], 0, kind)
        self.assertGreater(summary.operations["ok"], 10 * CI_SEEDS)


def _forget_vote(original):
    """Defeito: esquece o voto já dado no termo do pedido."""
    def handle_request_vote(self, request, now):
        if request.term == self.current_term:
            self.voted_for = None
        return original(self, request, now)
    return handle_request_vote


def _grant_twice(original):
    """Defeito: concede um segundo voto no termo, sem mudar voted_for."""
    def handle_request_vote(self, request, now):
        if request.term != self.current_term or self.voted_for is None:
            return original(self, request, now)
        vote = self.voted_for
        self.voted_for = None
        ready = original(self, request, now)
        self.voted_for = vote
        return ready
    return handle_request_vote


def _commit_by_count(self):
    """Defeito: compromete contando réplicas, sem a regra do termo atual."""
    if self.role != Role.LEADER:
        return
    replicated = sorted([self.last_log_index] + list(self.match_index.values()),
                        reverse=True)
    candidate = replicated[self.majority() - 1]
    if candidate > self.commit_index:
        self.commit_index = candidate
        self._emit_committed()
        self._check_reads()


def _truncate_after_prev(original):
    """Defeito: apaga tudo depois de prev_log_index, mesmo sem conflito."""
    def handle_append_entries(self, sender, request, now):
        if request.term >= self.current_term \
                and self.term_at(request.prev_log_index) == request.prev_log_term \
                and request.prev_log_index < self.last_log_index:
            self._truncate_log(request.prev_log_index + 1)
        return original(self, sender, request, now)
    return handle_append_entries


def _commit_unclamped(original):
    """Defeito: o seguidor adota leader_commit sem limitá-lo ao que o pedido conferiu."""
    def handle_append_entries(self, sender, request, now):
        ready = original(self, sender, request, now)
        if ready.reply.success and request.leader_commit > self.commit_index:
            self.commit_index = min(request.leader_commit, self.last_log_index)
            self._emit_committed()
            ready.committed.extend(self._take_ready().committed)
        return ready
    return handle_append_entries


def _forget_hard_state(original):
    """Defeito: muda o voto sem pedir que ele vá para o disco."""
    def handle_request_vote(self, request, now):
        ready = original(self, request, now)
        if ready.reply.vote_granted:
            ready.hard_state_changed = False
        return ready
    return handle_request_vote


class CheckerSensitivityTests(unittest.TestCase):
    """A verificação pega defeitos conhecidos, plantados no núcleo.

    Cada teste troca um pedaço do RaftCore por uma versão com um defeito
    que implementações reais já tiveram e confere que a simulação acusa uma
    violação: se ela não acusasse, os testes acima não provariam nada.
    """

    def first_failure(self, seeds: int = 300) -> SimulationError:
        for seed in range(1, seeds + 1):
            try:
                run_random_schedule(seed)
            except SimulationError as error:
                return error
        self.fail(f"nenhuma falha em {seeds} cronogramas com o defeito plantado")

    def test_forgotten_vote_caught(self):
        with mock.patch.object(RaftCore, "handle_request_vote",
                               _forget_vote(RaftCore.handle_request_vote)):
            error = self.first_failure()
        self.assertIsInstance(error, SafetyViolation)
        self.assertIn("mudou voted_for", error.message)

    def test_second_grant_caught(self):
        with mock.patch.object(RaftCore, "handle_request_vote",
                               _grant_twice(RaftCore.handle_request_vote)):
            error = self.first_failure()
        self.assertIsInstance(error, SafetyViolation)
        self.assertIn("dois líderes no termo", error.message)

    def test_vote_without_log_check_caught(self):
        with mock.patch.object(RaftCore, "_is_up_to_date", lambda self, term, index: True):
            error = self.first_failure()
        self.assertIsInstance(error, SafetyViolation)

    def test_commit_by_count_caught(self):
        with mock.patch.object(RaftCore, "_advance_commit_index", _commit_by_count):
            with self.assertRaises(SafetyViolation) as caught:
                FigureEightTests("test_old_entries_on_majority_uncommitted").build()
        self.assertIn("que não está comprometida", caught.exception.message)

    def test_truncation_without_conflict_caught(self):
        with mock.patch.object(RaftCore, "handle_append_entries",
                               _truncate_after_prev(RaftCore.handle_append_entries)):
            error = self.first_failure()
        self.assertIsInstance(error, SafetyViolation)

    def test_unclamped_commit_caught(self):
        with mock.patch.object(RaftCore, "handle_append_entries",
                               _commit_unclamped(RaftCore.handle_append_entries)):
            with self.assertRaises(SafetyViolation):
                NetworkTests("test_follower_commit_clamped").test_follower_commit_clamped()

    def test_forgotten_hard_state_caught(self):
        with mock.patch.object(RaftCore, "handle_request_vote",
                               _forget_hard_state(RaftCore.handle_request_vote)):
            error = self.first_failure(seeds=5)
        self.assertIn("faltou hard_state_changed", error.message)


if __name__ == "__main__":
    unittest.main()
