"""The public entry point: :class:`Recourse`."""

from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np
import pandas as pd

import encoders

from . import status as st
from .costs import make_cost
from .explanation import Explanation
from .problem import CompiledProblem, compile_problem, factual_values, resolve_min_change_steps
from .schema import Schema, SchemaError
from .solvers import SolveResult, SolverOptions, make_solver

MARGIN_RETRIES = (1.0, 100.0, 10000.0)
GAP_TOL = 1e-6  # relative gap under which a solver-proven optimum is reported optimal
# absolute part of that tolerance, in cost units: the decoded point's cost may exceed the
# solver's proven bound by round-off within HiGHS's feasibility tolerance (1e-7); seen on
# Adult LR as gaps of 5e-8 on costs of 2e-3, which are not a lack of proof
ABS_GAP_TOL = 1e-7
# budgets tried below the incumbent's cost, as fractions of it (see Recourse._solve_query)
BUDGET_STEPS = (0.1, 0.16, 0.26, 0.41, 0.66)
# Linf boxes from this share of the incumbent's radius up cost about the same to refute, so
# only the largest is tried: on 48 Credit rf100 people (interleaved A/B) p90 fell from 40 to
# 20-28 s, person 5 from 57 to 10 s; 0.25, 0.5 and 1 (largest box only) were within noise of
# each other, and 0.25 keeps the cheap small boxes of people whose optimum is far below
LINF_TOP = 0.25


class Recourse:
    """Exact nearest actionable counterfactuals for a fitted classifier.

    Parameters
    ----------
    model : fitted sklearn classifier (or Pipeline ending in one)
    schema : :class:`Schema` describing the raw columns
    cost : ``"l0" | "l1" | "linf"`` or ``{"l0": a, "l1": b, "linf": c}``
    scale : ``"range" | "mad" | "none"`` or ``{feature: weight}``
    solver : ``"highs"`` (default) or ``"ortools"``
    time_limit, mip_gap, threads, seed : solver options (``mip_gap`` relative; 0 = prove optimal)
    normalize : ``None`` or ``"mace"`` (every norm divided by the number of features)
    data : training frame, needed for ``scale="mad"``
    scm : optional :class:`mipcf.SCM`; costs then apply to interventions, and the model sees
        their consequences (recourse through minimal interventions)
    prune : with ``data`` and a tree model, start from the nearest training point the model
        accepts (repaired toward the person) and fix every split and leaf that cannot beat
        it; proofs stay exact, solves get much faster
    max_changes : at most this many features may change (any cost; a sparsity limit)
    min_changes : at least this many actionable features must change (any cost): categorical,
        ordinal, integer and binary ones by a level / unit, real ones by ``min_change_step``;
        fewer actionable features than that gives a certified "infeasible". Turns off the
        incumbent pruning of ``prune`` (its incumbents and budgets ignore this row)
    min_change_step : smallest move of a real feature that counts for ``min_changes``, in the
        feature's own units: one number for all real features or ``{feature: step}``;
        default ``1e-3 * (upper - lower)`` per real feature
    cost_tables : ``{feature: {value: cost}}``: the feature may only move to these values, at
        these costs (see :mod:`mipcf.costs`; ``cost="percentile"`` builds such tables from ``data``)
    plausibility : optional :class:`mipcf.IsolationForestConstraint`,
        :class:`mipcf.SupportConstraint` or :class:`mipcf.LeafSupportConstraint` (tree models;
        see :mod:`mipcf.plausibility`): the counterfactual
        must also lie on the data manifold; re-checked on every answer and reported in
        ``Explanation.extra["plausibility"]``
    intervention : with an SCM, ``"hard"`` (do(X := theta), the parents are cut) or
        ``"additive"`` (X is shifted by theta - x and keeps responding to its parents)
    robust : ``{"epsilon": e, "norm": "l1" | "l2" | "linf", "features": [...]}``: the action
        must also work for every person whose noise lies within ``e`` of this person's
        (linear models, linear SCM, additive interventions; without an SCM: an empty one)
    min_probability : the counterfactual must also get the desired class with
        ``predict_proba >= min_probability`` (trees, forests, binary boosting and binary
        logistic models; re-checked with the model's ``predict_proba``)

    The MILP is compiled on first use and reused for every person.
    """

    #: HiGHS options that make a solve of :meth:`to_pyomo`'s model exact (gap 0, tight tolerances)
    PYOMO_HIGHS_OPTIONS = {"mip_rel_gap": 0.0, "mip_abs_gap": 1e-9, "mip_feasibility_tolerance": 1e-7,
                           "primal_feasibility_tolerance": 1e-7}

    def __init__(self, model: Any, schema: Schema, cost: str | Mapping[str, float] = "l1",
                 scale: str | Mapping[str, float] = "range", solver: str = "highs",
                 time_limit: float | None = 60.0, mip_gap: float = 0.0, threads: int | None = 1,
                 seed: int = 0, normalize: str | None = None, data: pd.DataFrame | None = None,
                 scm: Any = None, encoder_options: Mapping[str, Any] | None = None,
                 prune: bool = True, max_changes: int | None = None,
                 cost_tables: Mapping[str, Mapping[Any, float]] | None = None, intervention: str = "hard",
                 robust: Mapping[str, Any] | None = None, plausibility: Any = None,
                 min_probability: float | None = None, min_changes: int | None = None,
                 min_change_step: float | Mapping[str, float] | None = None) -> None:
        encoders.check_supported(model)  # fail at construction, naming the type, not mid-batch
        self.model = model
        self.schema = schema
        self.cost = cost
        self.scale = scale
        self.solver = solver
        self.time_limit = time_limit
        self.mip_gap = mip_gap
        self.threads = threads
        self.seed = seed
        self.normalize = normalize
        self.data = data
        if intervention not in ("hard", "additive"):
            raise ValueError(f"intervention {intervention!r} is not 'hard' or 'additive'")
        if robust is not None and scm is None:
            from .causal import SCM
            scm, intervention = SCM(), "additive"  # no causal links: the ball is around the features
        self.scm = scm
        self.intervention = intervention
        self.robust = None if robust is None else dict(robust)
        self.encoder_options = dict(encoder_options or {})
        if min_probability is not None and not 0.0 <= float(min_probability) <= 1.0:
            raise ValueError(f"min_probability {min_probability!r} is not in [0, 1]")
        if min_probability is not None and not hasattr(model, "predict_proba"):
            raise ValueError(f"min_probability needs a model with predict_proba; {type(model).__name__} has none")
        self.min_probability = None if min_probability is None else float(min_probability)
        self.cost_tables = cost_tables
        self.cost_spec = make_cost(schema, cost, scale, data, normalize, cost_tables)
        self.prune = prune
        if max_changes is not None and (int(max_changes) != max_changes or max_changes < 0):
            raise ValueError(f"max_changes must be a non-negative integer, got {max_changes!r}")
        self.max_changes = None if max_changes is None else int(max_changes)
        if min_changes is not None and (isinstance(min_changes, bool) or int(min_changes) != min_changes
                                        or min_changes < 0):
            raise ValueError(f"min_changes must be a non-negative integer, got {min_changes!r}")
        self.min_changes = None if not min_changes else int(min_changes)  # 0: no constraint
        self.min_change_step = min_change_step
        self._min_change_steps = resolve_min_change_steps(schema, min_change_step)  # validates the names
        self._changes = False  # compile per-feature change indicators (diversity asks for them)
        self.plausibility = plausibility
        self._plaus = None  # the fitted block of ``plausibility`` (mipcf.plausibility.bind)
        self._problem: CompiledProblem | None = None
        self._solver = None
        self._pruner = None

    # joblib / dask ship the object to workers; the loaded solver is rebuilt there
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_problem"] = state["_solver"] = state["_pruner"] = state["_plaus"] = None
        return state

    @property
    def problem(self) -> CompiledProblem:
        if self._problem is None:
            if self.plausibility is not None:
                from .plausibility import bind
                self._plaus = bind(self.plausibility, self.model, self.schema, self.cost_spec, self.data)
            self._problem = compile_problem(self.model, self.schema, self.cost_spec, self.encoder_options,
                                            scm=self.scm, changes=self._changes, max_changes=self.max_changes,
                                            causal_options={"intervention": self.intervention,
                                                            "robust": self.robust},
                                            plausibility=self._plaus, min_probability=self.min_probability,
                                            min_changes=getattr(self, "min_changes", None),
                                            min_change_steps=getattr(self, "_min_change_steps", None))
        return self._problem

    @property
    def options(self) -> SolverOptions:
        shallow = self.problem.encoding.leaf_boxes is not None  # tree models: tens of B&B nodes
        return SolverOptions(time_limit=self.time_limit, mip_gap=self.mip_gap, threads=self.threads,
                             seed=self.seed, strong_branching=not shallow, restarts=not shallow,
                             node_cuts=not shallow)

    def _backend(self):
        if self._solver is None:
            p = self.problem
            self._solver = make_solver(self.solver, p.milp.arrays(p.c), self.options, p.milp.blocks)
        return self._solver

    # ---- queries -----------------------------------------------------------------------
    def explain(self, x: pd.DataFrame | pd.Series, desired_class: Any = None, k: int = 1,
                diversity: str = "support", min_distance: float | None = None):
        """The cheapest actionable counterfactual for one person (one-row frame or Series).

        With ``k > 1`` returns :class:`mipcf.diversity.Explanations`: up to ``k`` explanations
        in order of cost, each the cheapest one that is ``diversity``-different from all
        earlier ones (``"support"``: does not change a superset of the features an earlier
        one changed; ``"disjoint"``: changes no feature an earlier one changed;
        ``"distance"``: at least ``min_distance`` away from each earlier one).
        """
        if k != 1:
            from .diversity import explain_diverse
            return explain_diverse(self, x, desired_class, k=k, diversity=diversity, min_distance=min_distance)
        t0 = time.perf_counter()
        row = _as_row(x)
        self.schema.validate_frame(row)
        current = self.model.predict(row)[0]
        desired = self._desired(current, desired_class)
        ex = Explanation(st.ERROR, row, desired, solver=self.solver)
        if current == desired and self._meets_probability(row, desired):
            ex.status, ex.counterfactual, ex.cost, ex.bound, ex.gap = st.OPTIMAL, row.copy(), 0.0, 0.0, 0.0
            ex.message = "already predicted as the desired class"
        else:
            self._solve_into(ex, row, desired)
        ex.wall_time = time.perf_counter() - t0
        return ex

    def _desired(self, current: Any, desired_class: Any) -> Any:
        classes = list(self.model.classes_)
        if desired_class is None:
            if len(classes) != 2:
                raise ValueError("desired_class is required for models with more than two classes")
            return classes[1] if current == classes[0] else classes[0]
        for c in classes:
            if c == desired_class or str(c) == str(desired_class):
                return c
        raise ValueError(f"desired_class {desired_class!r} is not one of the model's classes {classes}")

    def _meets_probability(self, frame: pd.DataFrame, desired: Any) -> bool:
        """``predict_proba`` of the desired class reaches ``min_probability`` (True without one)."""
        if getattr(self, "min_probability", None) is None:
            return True
        k = [i for i, c in enumerate(self.model.classes_) if c == desired][0]
        return bool(self.model.predict_proba(frame)[0, k] >= self.min_probability)

    def _pruner_for(self):
        if self._pruner is None and self.prune and self.data is not None and self.scm is None \
                and (self.problem.encoding.leaf_boxes is not None or self.problem.encoding.tighten is not None) \
                and not self.cost_spec.tables \
                and not self.schema.links \
                and not getattr(self, "min_changes", None):
            from .pruning import Pruner
            self._pruner = Pruner(self.problem, self.model, self.schema, self.data,
                                  min_probability=getattr(self, "min_probability", None))
        return self._pruner

    def _solve_into(self, ex: Explanation, row: pd.DataFrame, desired: Any, prune: bool = True,
                    extra: Any = None) -> None:
        """Solve for one person; ``extra`` (see :mod:`mipcf.diversity`) adds cuts and columns."""
        p = self.problem
        values = factual_values(self.schema, row.iloc[0])
        idx = p.encoding.class_index(desired)
        pruner = self._pruner_for() if prune else None
        if pruner is not None and extra is not None:  # an incumbent that also meets the cuts
            start = extra.incumbent(pruner, row, values, desired, p.query(values, idx))
        else:
            start = pruner.incumbent(row, values, desired, p.query(values, idx)) if pruner else None
        if start is not None and not self._admits(start[0], values, extra):
            start = None  # the incumbent breaks a sparsity limit or a cut: no bound from it
        pl = self._plaus
        if start is not None and pl is not None and \
                not pl.incumbent_ok(self.schema.frame_from_values(start[0], row), desired):
            # an implausible incumbent bounds nothing under the plausibility rows; the nearest
            # training row both accept does (its lower bound on the unconstrained optimum stays valid)
            alt = pl.incumbent(pruner, values, desired, p.query(values, idx))
            start = None if alt is None else (alt[0], alt[1], start[2])
        deadline = time.perf_counter() + self.time_limit if self.time_limit else None
        if start is not None and start[1] <= start[2] * (1 + GAP_TOL):
            self._take_incumbent(ex, row, values, start, start[2])
            ex.status = st.OPTIMAL
            ex.message = ("proven optimal: as cheap as the previous explanation, whose cost bounds this one"
                          if getattr(extra, "earlier", None) else
                          "proven optimal: no point changes fewer features (exhaustive search of split intervals)")
            return
        for factor in MARGIN_RETRIES:
            q = p.query(values, idx, factor)
            info = pl.bound(q, values, desired, factor) if pl is not None else {}
            if extra is not None:
                q = extra.extend(q, values)
            res = self._solve_query(q, values, start, pruner, deadline, ex,
                                    backend=None if extra is None else extra.backend)
            if res.status == st.ERROR and res.x is None and start is not None:
                # time limit before the solver found a point: the verified incumbent stands,
                # with the best bound proven so far (the solver's, an empty budget's, or l0's)
                known = [b for b in (res.bound, start[2], ex.extra.get("proven_lower", 0.0)) if np.isfinite(b)]
                self._take_incumbent(ex, row, values, start, max(known))
                return
            if res.status == st.OPTIMAL and res.x is None:  # nothing cheaper than the incumbent
                self._take_incumbent(ex, row, values, start, res.bound, st.OPTIMAL)
                ex.message = "proven optimal: the solver found no point cheaper than this verified one"
                self._demote_uncertified(ex, info)
                return
            if res.status in (st.INFEASIBLE, st.ERROR):
                ex.status, ex.message, ex.bound = res.status, res.message, res.bound
                if res.status == st.INFEASIBLE:
                    ex.message = info.get("infeasible") or \
                        "no counterfactual exists under these constraints (certified by the solver)"
                return
            action = p.decode(res.x, q)
            after = action if p.causal is None else p.causal.decode(res.x, q, action)
            cf = self.schema.frame_from_values(after, row)
            if self.model.predict(cf)[0] != desired or not self._meets_probability(cf, desired):
                continue  # a solver tolerance let a rejected point through: ask for a wider margin
            if pl is not None and not pl.accepts(cf, desired):
                continue  # same for the plausibility rows
            if "min_changes" in p.extra and not p.extra["min_changes"].met(values, action):
                continue  # decoding undid a move the min_changes row counted: reject it like predict does
            ex.counterfactual = cf
            ex.extra["action"] = action
            if p.causal is not None:
                ex.interventions = p.causal.interventions(res.x, q, action)
            ex.cost = p.cost.evaluate(self.schema, values, action)
            if start is not None and start[1] < ex.cost - GAP_TOL * max(1.0, abs(ex.cost)):
                # the incumbent is better (a float tie is not: both are optimal)
                if res.status != st.OPTIMAL:  # time limit
                    self._take_incumbent(ex, row, values, start, res.bound)
                    return
                # a finished solve above a point predict accepts: that point wins by less than
                # the decision margin the MILP keeps, so the MILP bound does not cover it
                self._take_incumbent(ex, row, values, start, start[2] if np.isfinite(start[2]) else 0.0)
                ex.message = ("the model accepts a cheaper point (a repaired training row) than the "
                              "solver's optimum, by less than the decision margin; best known, not proven")
                if extra is None:
                    self._close_margin_gap(ex, row, values, idx, desired, start, pruner, deadline)
                return
            # bounds proven before this solve (single changes, budgets found empty) count too.
            # A point found at the time limit that meets the enumerated one is optimal; one that
            # meets only an empty budget is not: that 'empty' had no second opinion
            enumerated = start[2] if start is not None else np.nan
            earlier = [b for b in (enumerated, ex.extra.get("proven_lower", np.nan)) if np.isfinite(b)]
            bound = max([res.bound, *earlier]) if np.isfinite(res.bound) else max(earlier, default=res.bound)
            sure = max([b for b in (res.bound, enumerated) if np.isfinite(b)], default=-np.inf)
            met = ex.cost - sure <= GAP_TOL * abs(ex.cost) + ABS_GAP_TOL
            self._set_bound(ex, bound, st.OPTIMAL if res.status == st.FEASIBLE and met else res.status)
            if res.status == st.FEASIBLE and ex.status == st.OPTIMAL:
                ex.message = "proven optimal: the solver's point meets a lower bound proven before it"
            elif res.status == st.FEASIBLE and ex.gap <= GAP_TOL:
                ex.message = ("time limit: the bound that meets this point rests on a budget the solver "
                              "found empty once, without a second opinion; not reported optimal")
            ex.extra.update(res.extra)
            if pl is not None:
                ex.extra["plausibility"] = pl.report(cf, desired)
                if self._demote_uncertified(ex, info):
                    return
            if factor > 1:
                ex.message = f"decision margin widened x{factor:g} after the model rejected a solver point"
            return
        ex.status = st.ERROR
        ex.message = ("every solver point was rejected by model.predict"
                      + (" or the plausibility check" if pl is not None else "")
                      + (" or had fewer than min_changes changed features" if "min_changes" in p.extra else "")
                      + ", even with wider margins; this is a bug in the encoding, please report it")

    def _demote_uncertified(self, ex: Explanation, info: dict) -> bool:
        """A support block that kept only the nearest candidates proves nothing when a left-out
        one could support a cheaper answer: report ``ex`` as best known. Returns whether it did."""
        pl = self._plaus
        if pl is None or not hasattr(pl, "certified") or pl.certified(ex.cost, info):
            return False
        ex.status, ex.bound, ex.gap = st.FEASIBLE, 0.0, 1.0 if ex.cost else 0.0
        ex.message = (f"optimal over the {info['candidates']} nearest support candidates only; "
                      "raise max_candidates for a proof")
        return True

    def _close_margin_gap(self, ex: Explanation, row, values, idx: int, desired: Any, start, pruner,
                          deadline) -> None:
        """The MILP keeps a decision margin, so a point that ``predict`` accepts by less than
        the margin (``ex`` holds one) lies outside it. With the margin turned into a slack
        (score >= -margin) the MILP holds every point ``predict`` accepts: its optimum bounds
        the true one from below, and its point, if ``predict`` accepts it, is a candidate.
        Mostly the two meet, which proves ``ex`` (or that point) optimal."""
        p = self.problem
        if p.causal is not None or self._plaus is not None or "min_changes" in p.extra:
            return  # their rows are not relaxed with the margin: no bound from this
        q = p.query(values, idx, -1.0)
        res = self._solve_query(q, values, start, pruner, deadline, ex)
        if res.status != st.OPTIMAL or not np.isfinite(res.bound):
            return
        if res.x is not None:
            action = p.decode(res.x, q)
            cf = self.schema.frame_from_values(action, row)
            cost = p.cost.evaluate(self.schema, values, action)
            if cost < ex.cost and self.model.predict(cf)[0] == desired and self._meets_probability(cf, desired) \
                    and self._admits(action, values):
                ex.counterfactual, ex.extra["action"], ex.cost = cf, action, cost
        self._set_bound(ex, max(res.bound, ex.bound), st.OPTIMAL)
        ex.message = ("proven optimal with the decision margin relaxed (the model accepts this point by "
                      "less than the margin)" if ex.status == st.OPTIMAL else
                      "best known; the margin-relaxed MILP bounds the optimum (see bound and gap)")

    def _solve_query(self, q, values, start, pruner, deadline, ex: Explanation, backend=None):
        """One query, pruned by the incumbent when there is one (exact either way)."""
        backend = backend or self._backend()

        def solve(qq, cutoff=None, first=False, presolve=True):
            left = None if deadline is None else max(deadline - time.perf_counter(), 0.01)
            kw = {"cutoff": cutoff} if cutoff is not None else {}
            if first:
                kw["first"] = True
            if not presolve and getattr(backend, "supports_presolve_off", False):
                kw["presolve"] = False
            res = backend.solve(qq.lb, qq.ub, qq.row_lo, qq.row_hi, qq.c, qq.offset, time_limit=left, **kw)
            ex.solve_time += res.seconds
            ex.extra["solves"] = ex.extra.get("solves", 0) + 1
            return res

        leaf_bounds = pruner.leaf_lower_bounds(q, values) if start is not None and pruner.maps else None

        def restricted(budget: float, cutoff: float | None = None, first: bool = False, presolve: bool = True):
            qr = q.copy()
            pruner.prune(qr, values, budget, leaf_bounds)
            if self._plaus is not None:
                self._plaus.prune(self.problem, qr, values, budget)
            return solve(qr, cutoff, first, presolve)

        def holds() -> bool:
            """Is the incumbent a point of the MILP? A verified incumbent can sit inside the
            decision margin the MILP keeps: then 'nothing cheaper in the MILP' proves nothing."""
            qf = q.copy()
            pruner.prune(qf, values, start[1], leaf_bounds)
            self.problem.fix_point(qf, start[0])
            return solve(qf).x is not None

        def incumbent_optimal(bound: float) -> SolveResult:
            ex.extra["proven_lower"] = bound
            return SolveResult(st.OPTIMAL, None, start[1], bound, message="the incumbent is optimal")

        if start is None:
            return solve(q)
        # the radii are split edges: an optimum that must also sit near a training point need not
        radii = None if self.problem.free_points else pruner.linf_radii(q, values, start[1])
        if radii is not None and radii.size:
            # the box of radius r holds every point of cost <= r: the first feasible box gives
            # the global optimum, an infeasible one certifies a lower bound
            lo, hi = 0, radii.size
            while lo < hi:
                mid = (lo + hi) // 2
                if radii[mid] >= LINF_TOP * start[1]:
                    mid = hi - 1  # boxes this large cost about the same to refute: try the largest
                res = restricted(float(radii[mid]))
                if res.status != st.INFEASIBLE:
                    return res
                lo = mid + 1
                ex.extra["proven_lower"] = float(radii[mid])  # nothing costs <= this radius
            if holds():  # no candidate cost below the incumbent's is left: it is the optimum,
                res = restricted(float(radii[-1]), presolve=False)  # if a second opinion agrees
                return res if res.status != st.INFEASIBLE else incumbent_optimal(start[1])
        elif getattr(backend, "supports_cutoff", False) and self._pure_l0():
            res = self._count_search(restricted, start, ex)
            if res is not None:
                return res
        elif getattr(backend, "supports_cutoff", False):
            # Budgets below the incumbent's cost: pruning at budget r keeps every point of cost
            # <= r, so a restricted optimum <= r is the global one, and "nothing <= r" (the
            # cutoff) is a lower bound. The optimum is usually several times cheaper than the
            # incumbent, and a tight budget prunes almost every leaf of a forest.
            lower = start[2] if np.isfinite(start[2]) else 0.0
            for frac in BUDGET_STEPS:
                r = start[1] * frac
                if r <= lower:
                    continue
                res = restricted(r, cutoff=r)
                ex.extra["budget_solves"] = ex.extra.get("budget_solves", 0) + 1
                if res.status == st.OPTIMAL and res.objective <= r * (1 + 1e-9) + 1e-12:
                    return res
                if not _nothing_up_to(res, r):
                    break  # time limit or numerics: fall back to the incumbent's budget
                lower = r
                ex.extra["proven_lower"] = r  # nothing costs <= r
            # The last budget is the incumbent's, with the cutoff just below it: often the
            # incumbent is the optimum, and proving that nothing is cheaper is far quicker than
            # finding it again and then proving it (Credit rf100 l1: 8.6 -> 2.0 s of CPU)
            cut = start[1] * (1 - GAP_TOL / 2)
            res = restricted(start[1], cutoff=cut)
            if _nothing_up_to(res, cut) and holds():
                res = restricted(start[1], cutoff=cut, presolve=False)  # the proof: a second opinion
                if _nothing_up_to(res, cut):
                    return incumbent_optimal(cut)
            if res.status == st.INFEASIBLE or (res.status == st.OPTIMAL and res.objective > cut):
                res = restricted(start[1])  # the incumbent inside the margin, or numerics near the cutoff
            if res.status == st.INFEASIBLE:  # the verified incumbent lies inside the decision margin
                res = solve(q)
            return res
        res = restricted(start[1])
        if res.status == st.INFEASIBLE:  # the incumbent is a verified counterfactual: numerics
            res = solve(q)
        return res

    def _pure_l0(self) -> bool:
        c = self.problem.cost
        return bool(c.l0) and not c.l1 and not c.linf and not c.tables

    def _count_search(self, restricted, start, ex: Explanation, presolve: bool = True):
        """Pure l0: a cost is a number of changed features. From the proven lower bound up,
        ask for any point with k changes; the first k that has one is the optimum, so each
        level needs a first feasible point, not an optimality proof. The incumbent's own k
        always has one; None only if numerics lost it (the caller then solves in full).

        The proof rests on level k - 1 being empty (its budget holds every point with fewer
        changes), so that one answer gets a second opinion without presolve; if it disagrees,
        the search runs again without presolve."""
        unit = self.problem.cost.l0 / self.problem.cost.divisor
        lower = start[2] if np.isfinite(start[2]) else 0.0
        first_k = max(int(np.ceil(lower / unit - 1e-9)), 1)
        for k in range(first_k, int(round(start[1] / unit)) + 1):
            r = k * unit
            cut = r * (1 + 1e-6) + 1e-12
            res = restricted(r, cutoff=cut, first=True, presolve=presolve)
            ex.extra["budget_solves"] = ex.extra.get("budget_solves", 0) + 1
            if res.x is not None and res.objective > cut and res.status != st.OPTIMAL:
                res = restricted(r, cutoff=cut, presolve=presolve)  # it stopped above the cutoff: decide in full
            if res.x is not None and res.objective <= cut:
                if presolve and k > first_k:
                    below = (k - 1) * unit
                    again = restricted(below, cutoff=below * (1 + 1e-6) + 1e-12, first=True, presolve=False)
                    if not _nothing_up_to(again, below):
                        if again.x is None:  # time limit: the empty level below is unconfirmed
                            res.status = st.FEASIBLE
                            res.bound = ex.extra["proven_lower"] = max(lower, first_k * unit)
                            return res
                        return self._count_search(restricted, start, ex, presolve=False)
                res.status, res.bound = st.OPTIMAL, r  # fewer than k changes: proven impossible
                return res
            if not _nothing_up_to(res, r):
                return res  # time limit: the caller keeps the incumbent and the bound so far
            ex.extra["proven_lower"] = (k + 1) * unit  # no point changes only k features
        return None

    def _set_bound(self, ex: Explanation, bound: float, status: str) -> None:
        ex.bound = min(bound, ex.cost) if np.isfinite(bound) else ex.cost
        ex.gap = (ex.cost - ex.bound) / max(abs(ex.cost), 1e-12) if ex.cost else 0.0
        ex.status = status
        if ex.cost - ex.bound > GAP_TOL * abs(ex.cost) + ABS_GAP_TOL and ex.status == st.OPTIMAL:
            ex.status = st.FEASIBLE  # the decoded point costs more than the solver proved

    def _admits(self, point: Mapping[str, Any], values: Mapping[str, Any], extra: Any = None) -> bool:
        """Does a candidate point (per-feature values) meet max/min_changes and ``extra``'s cuts?"""
        mc = self.problem.extra.get("min_changes")
        if mc is not None and not mc.met(values, point):
            return False
        if self.max_changes is not None:
            from .costs import same
            n = sum(not same(f, values[f.name], point[f.name]) for f in self.schema.features)
            if n > self.max_changes:
                return False
        return extra is None or extra.admits(point, values)

    def _take_incumbent(self, ex: Explanation, row, values, start, bound: float,
                        status: str = st.FEASIBLE) -> None:
        """Report the verified incumbent with the proven bound (time limit: status feasible)."""
        ex.counterfactual = self.schema.frame_from_values(start[0], row)
        ex.extra["action"] = start[0]
        ex.cost = start[1]
        self._set_bound(ex, bound, status)
        if self._plaus is not None:
            ex.extra["plausibility"] = self._plaus.report(ex.counterfactual, ex.desired_class)
        if status != st.OPTIMAL:  # an optimal caller says what proved it
            ex.message = "time limit: best known counterfactual (a repaired training point) and the proven bound"

    def to_pyomo(self, x: pd.DataFrame | pd.Series, desired_class: Any = None):
        """The recourse MILP of one person as a Pyomo ``ConcreteModel``.

        Columns are ``model.x[j]`` (names in ``model.col_names``; a feature's value column is
        named after the feature), one Pyomo block per part (features, model, decision, cost);
        the objective is the cost. Add constraints and solve it with any Pyomo solver; the
        result is then not verified by mipcf, so check it with ``model.predict`` yourself.
        Decision margins are 1e-6, so solve with a feasibility tolerance of 1e-7 or less
        (HiGHS: :attr:`PYOMO_HIGHS_OPTIONS`); HiGHS's MIP default (1e-6) can accept a tie.
        """
        from encoders.pyomo_export import to_pyomo

        row = _as_row(x)
        self.schema.validate_frame(row)
        p = self.problem
        values = factual_values(self.schema, row.iloc[0])
        desired = self._desired(self.model.predict(row)[0], desired_class)
        q = p.query(values, p.encoding.class_index(desired))
        arrays = p.milp.arrays(p.c if q.c is None else q.c)
        arrays.lb, arrays.ub, arrays.row_lo, arrays.row_hi = q.lb, q.ub, q.row_lo, q.row_hi
        return to_pyomo(arrays, p.milp.blocks, q.offset)

    def explain_many(self, X: pd.DataFrame, desired_class: Any = None, n_jobs: int = 1,
                     backend: str = "joblib", scheduler: Any = None,
                     progress: bool | None = None) -> pd.DataFrame:
        """Explain every row of ``X``: one row per person (same index and order) with the
        counterfactual and its status.

        Rows that fail validation get status ``error`` with the message; the rest still run.
        ``n_jobs`` parallel workers through joblib, or ``backend="dask"`` on a LocalCluster of
        ``n_jobs`` workers / on ``scheduler`` (address or ``distributed.Client``); see
        :func:`mipcf.batch.iter_explain`. To write results as they finish, and resume, use
        :func:`mipcf.batch.explain_to_file`.
        """
        from .batch import explain_frame
        return explain_frame(self, X, desired_class, n_jobs=n_jobs, backend=backend, scheduler=scheduler,
                             progress=progress)

    def audit(self, X: pd.DataFrame, group_by: Any = None, favorable_class: Any = None, n_jobs: int = 1):
        """Recourse audit of a population: shares with recourse, certified no-recourse cases,
        cost distribution and the gaps between groups (see :mod:`mipcf.audit`)."""
        from .audit import audit
        return audit(self, X, group_by=group_by, favorable_class=favorable_class, n_jobs=n_jobs)


def _nothing_up_to(res, r: float) -> bool:
    """Does a solve under cutoff ``r`` prove that no point costs <= r? HiGHS says so as
    'infeasible', or as 'optimal' above the cutoff with a proven bound > r."""
    return res.status == st.INFEASIBLE or (res.status == st.OPTIMAL and np.isfinite(res.bound) and res.bound > r)


def _as_row(x: pd.DataFrame | pd.Series) -> pd.DataFrame:
    if isinstance(x, pd.Series):
        return x.to_frame().T.infer_objects()
    if isinstance(x, pd.DataFrame):
        if len(x) != 1:
            raise SchemaError(f"explain takes one row; got {len(x)} (use explain_many)")
        return x
    raise SchemaError(f"expected a one-row DataFrame or a Series, got {type(x).__name__}")
