"""workers.rules.queueing: Erlang B/C, M/M/c and the worker recommendation against closed forms and textbook values."""
from __future__ import annotations

import math

import pytest

from workers.rules import queueing


def test_it_computes_erlang_c_for_the_textbook_call_centre():
    # 360 calls per half hour, 240 s average handling time (48 Erlangs), 55 agents: the classic
    # worked example gives a 23.87 % probability of waiting and an average speed of answer of 8.2 s.
    assert queueing.erlang_c(55, 48.0) == pytest.approx(0.2387, abs=1e-4)
    asa = queueing.mmc_mean_wait(arrival_rate=360 / 1800, service_time=240, servers=55)
    assert asa == pytest.approx(8.18, abs=0.01)


def test_it_agrees_with_the_factorial_form_of_erlang_c():
    for c, a in [(1, 0.7), (2, 1.0), (3, 2.0), (10, 7.5), (40, 35.0)]:
        top = a**c / math.factorial(c) * c / (c - a)
        ref = top / (sum(a**k / math.factorial(k) for k in range(c)) + top)
        assert queueing.erlang_c(c, a) == pytest.approx(ref, rel=1e-12)


def test_it_uses_a_closed_form_for_many_servers_that_matches_the_recursion():
    c, a = 900, 870.0  # beyond the recursion cut-over
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    assert queueing.erlang_b(c, a) == pytest.approx(b, rel=1e-9)


def test_it_treats_an_overloaded_queue_as_always_waiting_and_unbounded():
    assert queueing.erlang_c(4, 4.0) == 1.0
    assert queueing.mmc_wait_quantile(arrival_rate=1.0, service_time=5.0, servers=4) == math.inf


def test_it_gives_the_mm1_wait_percentile_in_closed_form():
    # M/M/1: P(W > t) = rho * exp(-(mu - lambda) t)
    lam, mu = 0.8, 1.0
    expected = math.log(0.8 / 0.05) / (mu - lam)
    assert queueing.mmc_wait_quantile(arrival_rate=lam, service_time=1 / mu, servers=1, q=0.95) == pytest.approx(expected)


def test_it_reports_zero_wait_percentile_when_few_jobs_wait():
    assert queueing.mmc_wait_quantile(arrival_rate=0.1, service_time=1.0, servers=5, q=0.95) == 0.0


def test_it_finds_the_smallest_server_count_meeting_a_target():
    lam, s, target = 2.0, 10.0, 5.0
    c = queueing.smallest_servers(arrival_rate=lam, service_time=s, target_seconds=target)
    assert queueing.mmc_wait_quantile(arrival_rate=lam, service_time=s, servers=c) <= target
    assert queueing.mmc_wait_quantile(arrival_rate=lam, service_time=s, servers=c - 1) > target


def test_it_computes_the_poll_wait_percentile_of_the_first_poller():
    assert queueing.poll_wait_quantile(1) == pytest.approx(28.5)
    # two independent uniform(0, 30) pollers: P(min > t) = (1 - t/30)^2
    t = queueing.poll_wait_quantile(2)
    assert (1 - t / 30) ** 2 == pytest.approx(0.05)


def test_it_recommends_two_workers_for_a_light_group_because_of_availability():
    rec = queueing.recommend_workers(arrival_rate=2 / 60, service_time=300, target_p95_seconds=60)
    assert rec.workers == 2
    assert rec.binding == "minimum"


def test_it_recommends_workers_for_the_documented_pickup_rate_under_heavy_arrivals():
    # 30 jobs/s, 60-s jobs: pickup at 80 % of 4 jobs / 30 s per worker needs ceil(30 / (0.8 * 4/30)) workers
    rec = queueing.recommend_workers(arrival_rate=30.0, service_time=60.0, target_p95_seconds=60)
    assert rec.workers == math.ceil(30 / (0.8 * 4 / 30))
    assert rec.binding == "pickup"


def test_it_recommends_more_workers_when_the_slots_are_the_bottleneck():
    rec = queueing.recommend_workers(arrival_rate=0.5, service_time=600.0, target_p95_seconds=40, slots_per_worker=5)
    assert rec.binding == "queue"
    assert rec.p95_at <= 40
    assert queueing.model_queue_p95(workers=rec.workers - 1, arrival_rate=0.5, service_time=600.0, slots_per_worker=5) > 40


def test_it_refuses_a_target_no_number_of_workers_can_meet():
    with pytest.raises(ValueError):
        queueing.recommend_workers(arrival_rate=1.0, service_time=10.0, target_p95_seconds=-1)
