"""The rollout phase of a DUET step, shared by training and validation: M generates, each response's thinking is
its signal, m's rows are built from the signals and m answers them. At most one rollout engine is awake at a time.

A mixin of ``DuetTrainer``; rows of M and m are linked by explicit ids (``large_row``), never by position.
"""

from __future__ import annotations

import uuid
from collections import defaultdict

import numpy as np
from verl import DataProto
from verl.utils.debug import marked_timer

from duet_verl.core import extract_signal, small_question
from duet_verl.train.agent_loop import AGENT_NAME
from duet_verl.train.duet_config import BASELINE_TEMPLATE
from duet_verl.train.verl_adapter import ModelRole, object_array


class DuetRollouts:
    """Both models' generations. The trainer provides ``config`` (M's), ``duet``, ``large`` and ``small``
    (``ModelRole`` s), ``global_steps``, ``large_decoder``, ``small_tokenizer``, verl's ``_get_gen_batch`` and
    ``_awake`` (the name of the engine awake, or None)."""

    def _generate_large(self, batch_dict: dict, n: int, validate: bool, timing: dict, timer: str) -> DataProto:
        """M's n responses per question, one row each, with the question's ``uid`` and an explicit ``large_row`` id."""
        batch = DataProto.from_single_dict(batch_dict)
        batch.non_tensor_batch["uid"] = object_array([str(uuid.uuid4()) for _ in range(len(batch))])
        gen_batch = self._get_gen_batch(batch).repeat(repeat_times=n, interleave=True)
        gen_batch.meta_info.update({"global_steps": self.global_steps, "validate": validate})
        large_batch = batch.repeat(repeat_times=n, interleave=True).union(
            self._generate(self.large, gen_batch, timing, timer)
        )
        large_batch.non_tensor_batch["large_row"] = np.arange(len(large_batch))
        large_batch.non_tensor_batch["raw_prompt"] = gen_batch.non_tensor_batch["raw_prompt"]
        texts = self._response_texts(large_batch, self.large_decoder.batch_decode)
        large_batch.non_tensor_batch["response_text"] = object_array(texts)
        return large_batch

    def _signals(self, large_batch: DataProto) -> list:
        """Each M response's signal for m: its thinking (``core.signal.extract_signal``, M's markers)."""
        start, end = self.duet.think_start, self.duet.think_end
        return [extract_signal(text, start, end) for text in large_batch.non_tensor_batch["response_text"]]

    def _rollout_small(self, large_batch: DataProto, signals, timing: dict) -> tuple[DataProto, DataProto | None]:
        """m's k answers per signal (``small_batch``) and, when marginal utility is on, its k answers to the bare
        question (``baseline_batch``: per M response, or per question for ``per_prompt``). m's engine sleeps after the
        last of the two."""
        k = self.duet.small_rollouts_per_signal
        guided_rows = self._small_rows(large_batch, signals, k, self.duet.small_prompt_template, per_question=False)
        small_batch = self._generate_small(
            guided_rows, validate=False, timing=timing, timer="gen_small", sleep_after=not self.duet.needs_baseline
        )
        if not self.duet.needs_baseline:
            return small_batch, None
        per_question = self.duet.marginal_utility == "per_prompt"
        baseline_rows = self._small_rows(large_batch, signals, k, BASELINE_TEMPLATE, per_question)
        baseline_batch = self._generate_small(
            baseline_rows, validate=False, timing=timing, timer="gen_baseline", sleep_after=True
        )
        return small_batch, baseline_batch

    def _validation_rollout(self, batch_dict: dict, timing: dict) -> tuple[DataProto, list, DataProto]:
        """The same chain with validation sampling: M's ``val_kwargs.n`` responses per question, their signals, and
        m's ``duet.val_small_rollouts_per_signal`` answers per signal to the question in ``duet.val_small_question``'s
        form."""
        n = self.config.actor_rollout_ref.rollout.val_kwargs.n
        large_batch = self._generate_large(batch_dict, n, validate=True, timing=timing, timer="val_gen_large")
        signals = self._signals(large_batch)
        small_rows = self._small_rows(
            large_batch,
            signals,
            self.duet.val_small_rollouts_per_signal,
            self.duet.small_prompt_template,
            per_question=False,
            question_form=self.duet.val_small_question,
        )
        small_batch = self._generate_small(
            small_rows, validate=True, timing=timing, timer="val_gen_small", sleep_after=True
        )
        return large_batch, signals, small_batch

    def _small_rows(
        self, large_batch: DataProto, signals, k: int, template: str, per_question: bool, question_form: str = "bare"
    ) -> DataProto:
        """k m rows per M row (guided and per-signal baseline) or per question (per-prompt baseline); m reads the
        question in ``question_form`` (``core.small_question``; validation's ``duet.val_small_question``)."""
        nt = large_batch.non_tensor_batch
        rows = defaultdict(list)
        seen_questions = set()
        for i in range(len(large_batch)):
            if per_question:
                if nt["uid"][i] in seen_questions:
                    continue
                seen_questions.add(nt["uid"][i])
            question = small_question((nt["extra_info"][i] or {}).get("question"), nt["raw_prompt"][i], question_form)
            for _ in range(k):
                rows["large_row"].append(-1 if per_question else int(nt["large_row"][i]))
                rows["question_uid"].append(nt["uid"][i])
                rows["question"].append(question)
                rows["signal"].append(None if template == BASELINE_TEMPLATE else signals[i].text)
                rows["template"].append(template)
                rows["raw_prompt"].append([{"role": "user", "content": question}])
                rows["agent_name"].append(AGENT_NAME)
                for key in ("data_source", "reward_model", "extra_info"):
                    rows[key].append(nt[key][i])
        return DataProto(non_tensor_batch={key: object_array(values) for key, values in rows.items()})

    def _generate_small(self, small_rows: DataProto, validate: bool, timing: dict, timer: str, sleep_after: bool):
        """m's answers to ``small_rows``, scored in verl's reward loop (``rm_scores``), with the rows' ids kept."""
        small_rows.meta_info.update({"global_steps": self.global_steps, "validate": validate})
        batch = self._generate(self.small, small_rows, timing, timer, sleep_after=sleep_after)
        batch.non_tensor_batch.update(small_rows.non_tensor_batch)  # m's rows carry no tensors to union
        return batch

    def _generate(self, role: ModelRole, batch: DataProto, timing: dict, timer: str, sleep_after: bool = True):
        """Sync ``role``'s weights into its (sleeping) rollout engine, generate, and put it back to sleep."""
        if self._awake not in (None, role.name):
            raise RuntimeError(f"rollout engine {self._awake} is still awake while waking {role.name}")
        if self._awake is None:
            with marked_timer(f"sync_weights_{role.name}", timing):
                role.sync_weights(self.global_steps)
            self._awake = role.name
            print(f"[duet] rollout engine awake: {role.name}", flush=True)
        with marked_timer(timer, timing):
            output = role.generate(batch)
        if sleep_after:
            role.sleep_engine()
            self._awake = None
            print(f"[duet] rollout engine asleep: {role.name}", flush=True)
        return output

    @staticmethod
    def _response_texts(batch: DataProto, batch_decode) -> list[str]:
        """Each row's valid response tokens as text, by ``batch_decode``: M's ``ResponseDecoder`` (special tokens
        dropped but the thinking markers) or ``_small_texts``' (special tokens dropped)."""
        responses, lengths = batch.batch["responses"].tolist(), batch.batch["response_mask"].sum(-1).tolist()
        return batch_decode([ids[:length] for ids, length in zip(responses, lengths, strict=True)])

    def _small_texts(self, batch: DataProto) -> list[str]:
        """m's answers as the reward manager decodes them for scoring."""
        decode = self.small_tokenizer.batch_decode
        return self._response_texts(batch, lambda rows: decode(rows, skip_special_tokens=True))
