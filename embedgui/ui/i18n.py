"""UI text in English and Korean from one table, and the registry the language switch walks.

TEXT: key -> (English, 한국어); FIELD_LABELS / FIELD_HELP: config field path -> (English, 한국어). Components
register themselves with a key when they are made (Texts.make / Texts.add), as LLaMA-Factory's element manager
does, so switching the language updates every registered component and nothing is listed by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

LANGUAGES = {"English": "en", "한국어": "ko"}

TEXT: dict[str, tuple[str, str]] = {
    "title": ("embedgui — fine-tune text embeddings", "embedgui — 텍스트 임베딩 파인튜닝"),
    "subtitle": ("Collect pairs, train with InfoNCE, measure retrieval before and after, and search.",
                 "학습 쌍을 모으고, InfoNCE로 학습하고, 학습 전후 검색 성능을 측정하고, 검색해 보세요."),
    "language": ("Language", "언어"),
    # tabs
    "tab.data": ("1. Data", "1. 데이터"),
    "tab.config": ("2. Config", "2. 설정"),
    "tab.train": ("3. Train", "3. 학습"),
    "tab.eval": ("4. Evaluate", "4. 평가"),
    "tab.search": ("5. Search", "5. 검색"),
    # data tab
    "data.current": ("Training data in use", "현재 학습 데이터"),
    "data.crawl": ("Crawl glossary pages", "용어집 웹페이지 크롤링"),
    "data.sources": ("Built-in sources", "내장 소스"),
    "data.urls": ("URLs (one a line)", "URL (한 줄에 하나)"),
    "data.limit": ("Limit per source", "소스별 최대 용어 수"),
    "data.crawl_btn": ("Crawl", "크롤링"),
    "data.found": ("Terms found", "찾은 용어"),
    "data.errors": ("Pages that failed", "실패한 페이지"),
    "data.upload": ("Upload a CSV / TSV / JSONL", "CSV / TSV / JSONL 업로드"),
    "data.file": ("Drop a file here", "여기에 파일을 끌어다 놓으세요"),
    "data.anchor_col": ("Anchor (term / question) column", "앵커(용어/질문) 열"),
    "data.positive_col": ("Positive (definition / answer) column", "포지티브(정의/답변) 열"),
    "data.preview": ("Preview", "미리보기"),
    "data.compose": ("Compose pairs.jsonl", "pairs.jsonl 만들기"),
    "data.hard_k": ("Hard negatives per row", "행당 하드 네거티브 수"),
    "data.miner": ("Hard-negative miner", "하드 네거티브 마이너"),
    "data.eval_ratio": ("Eval split (share of anchors held out)", "평가용 분할 비율(앵커 기준)"),
    "data.compose_btn": ("Compose and use for training", "만들고 학습 데이터로 사용"),
    "data.report": ("Composer report", "변환 보고서"),
    "data.download": ("Download", "다운로드"),
    "data.use_sample": ("Use the bundled sample glossary", "내장 샘플 용어집 사용"),
    # config tab
    "config.load": ("Load config.json", "config.json 불러오기"),
    "config.save": ("Save config.json", "config.json 저장"),
    "config.saved_hosted": ("Saved. This shared app hands out no config files, only exported models; run embedgui "
                            "on your own machine to download one.",
                            "저장했습니다. 이 공유 앱은 내보낸 모델만 내려받게 하고 설정 파일은 내려받게 하지 "
                            "않습니다. 내려받으려면 자신의 컴퓨터에서 embedgui를 실행하세요."),
    "config.command": ("Same run from the command line", "명령줄에서 같은 학습 실행"),
    "config.errors": ("Problems", "문제"),
    "config.ok": ("The config is valid.", "설정에 문제가 없습니다."),
    "config.missing_files": ("The form is saved, but Start will stop on this until it is fixed:",
                             "설정은 저장되었지만, 다음을 고치기 전에는 시작할 수 없습니다:"),
    "config.section.model": ("Model", "모델"),
    "config.not_set": ("not set", "설정 안 함"),
    # train tab
    "train.start": ("Start", "시작"),
    "train.stop": ("Stop", "중지"),
    "train.resume": ("Resume", "이어서 학습"),
    "train.status": ("Status", "상태"),
    "train.log": ("Log", "로그"),
    "chart.loss": ("Loss", "손실"),
    "chart.acc": ("In-batch accuracy", "배치 내 정확도"),
    "chart.lr": ("Learning rate", "학습률"),
    "chart.eval": ("Eval metrics", "평가 지표"),
    "train.idle": ("No run yet. Press Start.", "아직 학습이 없습니다. 시작을 누르세요."),
    "train.busy": ("A training run is already going; stop it first, or wait until it ends.",
                   "이미 학습이 진행 중입니다. 먼저 중지하거나 끝날 때까지 기다리세요."),
    "train.fix_config": ("Fix the config first (2. Config tab):", "먼저 설정을 고치세요(2. 설정 탭):"),
    "train.started": ("Started.", "시작했습니다."),
    "train.stopping": ("Stopping after this step and saving a snapshot...",
                       "이번 스텝 후 스냅샷을 저장하고 중지합니다..."),
    "train.nothing": ("Nothing is running.", "진행 중인 학습이 없습니다."),
    # eval tab
    "eval.model": ("Fine-tuned model (run folder or model id)", "파인튜닝된 모델(실행 폴더 또는 모델 ID)"),
    "eval.base": ("Base model to compare with (empty: none)", "비교할 기본 모델(비우면 비교 안 함)"),
    "eval.pairs": ("Pairs file to score", "평가할 pairs 파일"),
    "eval.run": ("Evaluate", "평가"),
    "eval.table": ("Metrics", "지표"),
    "eval.chart": ("Before and after", "학습 전후"),
    "eval.refresh": ("Refresh list", "목록 새로고침"),
    # search tab
    "search.query": ("Query", "검색어"),
    "search.k": ("Results", "결과 수"),
    "search.corpus": ("Corpus", "코퍼스"),
    "search.corpus_file": ("Or upload a list of texts (one a line, or CSV)",
                           "또는 텍스트 목록 업로드(한 줄에 하나 또는 CSV)"),
    "search.column": ("CSV column", "CSV 열"),
    "search.dim": ("Embedding size", "임베딩 차원"),
    "search.run": ("Search", "검색"),
    "search.tuned": ("Fine-tuned model", "파인튜닝된 모델"),
    "search.base": ("Base model", "기본 모델"),
    # train tab: runs
    "train.precision": ("Precision", "정밀도"),
    "train.runs": ("Runs", "학습 기록"),
    "train.runs_table": ("Every run in this workspace (newest first)", "이 작업 공간의 모든 학습(최신순)"),
    "train.pick": ("Run", "학습"),
    "train.show": ("Show charts", "차트 보기"),
    "train.resume_run": ("Resume this run", "이 학습 이어서"),
    "train.eval_run": ("Evaluate this run", "이 학습 평가"),
    "train.search_run": ("Search with this run", "이 학습으로 검색"),
    "train.delete": ("Delete...", "삭제..."),
    "train.delete_confirm": ("Yes, delete this run's folder", "예, 이 학습 폴더를 삭제합니다"),
    "train.delete_cancel": ("Cancel", "취소"),
    "train.delete_ask": ("Delete `{name}` and every file in it? This cannot be undone.",
                         "`{name}` 폴더와 그 안의 파일을 모두 삭제할까요? 되돌릴 수 없습니다."),
    "train.deleted": ("Deleted `{name}`.", "`{name}`을(를) 삭제했습니다."),
    "train.no_run": ("Pick a run in the list first.", "먼저 목록에서 학습을 고르세요."),
    "train.not_resumable": ("`{name}` has no snapshot to resume from (or it finished); press Start for a new run.",
                            "`{name}`에는 이어서 학습할 스냅샷이 없습니다(또는 완료됨). 새 학습은 시작을 누르세요."),
    "train.resumed": ("Resuming `{name}`.", "`{name}`을(를) 이어서 학습합니다."),
    "train.started_in": ("Started a new run in `{name}`.", "새 학습을 `{name}`에서 시작했습니다."),
    "train.smooth": ("Smoothed loss line (EMA)", "손실 평활선(EMA)"),
    "train.export": ("Export and share", "내보내기와 공유"),
    "train.export_zip": ("Download the model as a zip", "모델을 zip으로 다운로드"),
    "train.zip_file": ("Model zip", "모델 zip"),
    "train.hub_repo": ("Hub repository (user/name)", "허브 저장소(사용자/이름)"),
    "train.hub_private": ("Private repository", "비공개 저장소"),
    "train.hub_token": ("Hugging Face token (empty: HF_TOKEN from the environment; never stored)",
                        "Hugging Face 토큰(비우면 환경 변수 HF_TOKEN 사용, 저장하지 않음)"),
    "train.hub_token_hosted": ("Hugging Face token with write access (yours: this shared app has none; never stored)",
                               "쓰기 권한이 있는 본인의 Hugging Face 토큰(이 공유 앱에는 토큰이 없음, 저장하지 않음)"),
    "train.hub_push": ("Push to the Hub", "허브에 올리기"),
    "train.pushed": ("Pushed to {url}", "{url}에 올렸습니다"),
    "train.no_model": ("`{name}` has no saved model yet.", "`{name}`에는 아직 저장된 모델이 없습니다."),
    "train.compare": ("Compare two runs", "두 학습 비교"),
    "train.compare_a": ("Run A", "학습 A"),
    "train.compare_b": ("Run B", "학습 B"),
    "train.compare_btn": ("Compare", "비교"),
    "train.compare_table": ("Eval metrics, A and B", "평가 지표: A와 B"),
    "train.viewing": ("Showing the saved charts of `{name}`.", "`{name}`의 저장된 차트를 보여줍니다."),
    "train.loading": ("Loading the model and the data...", "모델과 데이터를 불러오는 중..."),
    "train.training_on": ("Training on {device} ({precision})", "{device}에서 학습 중 ({precision})"),
    "train.nothing_kept": ("Nothing was trained, so the new run's folder was removed; fix the above and press Start "
                           "again.", "학습된 것이 없어 새 실행 폴더는 지웠습니다. 위 문제를 고친 뒤 다시 시작하세요."),
    "train.ended": ("{status} at step {step}/{max_steps}; model saved in",
                    "{status}: {step}/{max_steps} 스텝, 모델 저장 위치"),
    "train.failed": ("Failed:", "실패:"),
    # what a run's set-up is doing (engine.callbacks.PHASES)
    "phase.data": ("Reading the data", "데이터를 읽는 중"), "phase.model": ("Loading the model", "모델을 불러오는 중"),
    "phase.resume": ("Restoring the snapshot", "스냅샷을 복원하는 중"), "phase.train": ("Training", "학습 중"),
    "phase.eval": ("Evaluating", "평가 중"), "phase.mine": ("Mining hard negatives", "하드 네거티브 마이닝 중"),
    "col.name": ("run", "학습"), "col.status": ("status", "상태"), "col.steps": ("steps", "스텝"),
    "col.data": ("data", "데이터"), "col.rows": ("rows", "행"), "col.settings": ("settings", "설정"),
    "col.metrics": ("final eval", "최종 평가"), "col.model": ("model", "모델"),
    "col.metric": ("metric", "지표"), "col.score": ("score", "점수"), "col.text": ("text", "텍스트"),
    "col.term": ("term", "용어"), "col.base": ("base", "기본 모델"), "col.tuned": ("fine-tuned", "파인튜닝"),
    "col.delta": ("delta", "차이"), "col.url": ("url", "URL"), "col.reason": ("reason", "이유"),
    "chart.step": ("step", "스텝"), "chart.smoothed": ("loss (EMA)", "손실(EMA)"),
    "status.idle": ("idle", "대기"), "status.starting": ("starting", "시작 중"),
    "status.running": ("running", "학습 중"), "status.stopping": ("stopping", "중지 중"),
    "status.stopped": ("stopped", "중지됨"), "status.finished": ("finished", "완료"),
    "status.failed": ("failed", "실패"), "status.incomplete": ("incomplete", "미완료"),
    "progress.elapsed": ("elapsed", "경과"), "progress.epoch": ("epoch", "에폭"), "progress.step": ("step", "스텝"),
    "progress.eta": ("ETA", "남은 시간"),
    "word.error": ("Error", "오류"), "word.ok": ("Done", "완료"), "word.warning": ("Warning", "주의"),
    "word.busy": ("Busy", "진행 중"),
    "lang.mismatch": ("{model} is an English-only model and {share:.0%} of the training texts are Korean; "
                      "a multilingual model such as sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2 "
                      "or intfloat/multilingual-e5-small will learn them far better.",
                      "{model}은(는) 영어 전용 모델인데 학습 텍스트의 {share:.0%}가 한국어입니다. "
                      "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2 나 intfloat/multilingual-e5-small "
                      "같은 다국어 모델이 훨씬 잘 배웁니다."),
    # data tab messages
    "data.upload_ok": ("{name}: {rows} rows, columns {columns} ({encoding}); {how}",
                       "{name}: {rows}행, 열 {columns} ({encoding}); {how}"),
    "hosted.quota": ("Your folder on this shared app would hold {used:.0f} MB, more than its {quota:.0f} MB: delete "
                     "runs you no longer need (3. Train, the run list), then try again.",
                     "이 공유 앱에서 내 폴더가 {used:.0f} MB가 되어 한도 {quota:.0f} MB를 넘습니다. "
                     "필요 없는 학습 결과를 지운 다음(3. 학습의 실행 목록) 다시 시도하세요."),
    "data.too_big": ("{name} is {size:.1f} MB; the limit is {limit} MB. Split the file or run "
                     "`python -m embedgui compose` locally.",
                     "{name}은(는) {size:.1f} MB로 한도 {limit} MB를 넘습니다. 파일을 나누거나 로컬에서 "
                     "`python -m embedgui compose`를 실행하세요."),
    "data.too_many_urls": ("{n} URLs: a hosted app crawls at most {limit} at a time; run embedgui locally for more.",
                           "URL {n}개: 호스팅된 앱은 한 번에 최대 {limit}개까지 크롤링합니다. 더 많으면 로컬에서 "
                           "실행하세요."),
    "data.no_start": ("Choose a source or give a URL.", "소스를 고르거나 URL을 입력하세요."),
    "data.no_entries": ("No glossary entries found on {pages} page(s); see the errors below.",
                        "{pages}개 페이지에서 용어를 찾지 못했습니다. 아래 오류를 보세요."),
    "data.crawled": ("{terms} terms from {pages} page(s), {failed} failed -> `{path}`",
                     "{pages}개 페이지에서 용어 {terms}개, 실패 {failed}개 -> `{path}`"),
    "data.no_table": ("Upload a file or crawl pages first.", "먼저 파일을 올리거나 페이지를 크롤링하세요."),
    "data.composed": ("Composed {pairs} training pairs{eval}; they are now the training data (Config tab).",
                      "학습 쌍 {pairs}개를 만들었습니다{eval}. 이제 학습 데이터로 쓰입니다(설정 탭)."),
    "data.composed_eval": (" and {n} held-out pairs for evaluation", ", 평가용 쌍 {n}개"),
    "data.report_rows": ("rows read", "읽은 행"), "data.report_skipped": ("skipped", "건너뜀"),
    "data.report_dups": ("duplicates removed", "제거된 중복"), "data.report_written": ("pairs written", "쓴 쌍"),
    "data.report_neg": ("hard negatives mined", "마이닝한 하드 네거티브"),
    "data.report_details": ("Full report", "전체 보고서"),
    "report.input": ("input", "입력"), "report.columns": ("columns", "열"),
    "report.skipped_why": ("skipped: {reason}", "건너뜀: {reason}"), "report.lines": ("lines", "줄"),
    "report.train_file": ("training file", "학습 파일"), "report.eval_file": ("eval file", "평가 파일"),
    "report.pairs_anchors": ("{pairs} pairs, {anchors} anchors", "쌍 {pairs}개, 앵커 {anchors}개"),
    "report.pairs": ("{n} pairs", "쌍 {n}개"),
    "report.negatives": ("hard negatives", "하드 네거티브"),
    "report.negatives_value": ("{given} given, {mined} mined ({miner}, k={k}); {short} rows have fewer than {k}",
                               "주어진 것 {given}개, 마이닝 {mined}개({miner}, k={k}); {k}개 미만인 행 {short}개"),
    "report.negatives_none": ("{given} given, none mined", "주어진 것 {given}개, 마이닝 안 함"),
    "report.anchor_len": ("anchor length", "앵커 길이"), "report.positive_len": ("positive length", "포지티브 길이"),
    "report.length_value": ("characters: median {cmed:g}, p95 {cp95}, max {cmax}; tokens: median {tmed:g}, "
                            "p95 {tp95}, max {tmax}; {over:.1%} over {max_length} tokens",
                            "문자: 중앙값 {cmed:g}, p95 {cp95}, 최대 {cmax}; 토큰: 중앙값 {tmed:g}, p95 {tp95}, "
                            "최대 {tmax}; {max_length} 토큰 초과 {over:.1%}"),
    "report.tokens_by": ("tokens counted by", "토큰 계산 방법"), "report.seconds": ("time", "소요 시간"),
    # data tab: stopping, progress
    "data.stop_crawl": ("Stop the crawl", "크롤링 중지"),
    "data.stop_compose": ("Stop composing", "만들기 중지"),
    "data.crawl_stopping": ("Stopping the crawl; the pages finished so far are kept.",
                            "크롤링을 중지합니다. 지금까지 끝난 페이지는 보존됩니다."),
    "data.compose_stopping": ("Stopping; nothing will be written.", "중지합니다. 아무것도 쓰지 않습니다."),
    "data.no_crawl": ("No crawl is running.", "진행 중인 크롤링이 없습니다."),
    "data.no_compose": ("Nothing is being composed.", "진행 중인 만들기 작업이 없습니다."),
    "data.crawl_busy": ("A crawl is already running; stop it first or wait until it ends.",
                        "이미 크롤링이 진행 중입니다. 먼저 중지하거나 끝날 때까지 기다리세요."),
    "data.compose_busy": ("Pairs are already being composed; stop that first or wait until it ends.",
                          "이미 학습 쌍을 만드는 중입니다. 먼저 중지하거나 끝날 때까지 기다리세요."),
    "data.crawl_stopped": ("Crawl stopped after {pages} page(s): {terms} terms kept in `{path}`. Press Crawl with "
                           "the same sources and limit to go on where it stopped.",
                           "{pages}개 페이지 후 크롤링을 중지했습니다. 용어 {terms}개가 `{path}`에 보존되었습니다. "
                           "같은 소스와 한도로 크롤링을 누르면 멈춘 곳부터 이어집니다."),
    "data.crawl_resumed": (" (went on from a stopped crawl: {n} page(s) were already done)",
                           " (중지된 크롤링을 이어서 함: {n}개 페이지는 이미 완료)"),
    "data.compose_stopped": ("Composing was stopped; no file was written and the training data is unchanged.",
                             "만들기를 중지했습니다. 파일을 쓰지 않았고 학습 데이터도 그대로입니다."),
    "stage.started": ("fetching", "가져오는 중"), "stage.done": ("done", "완료"), "stage.failed": ("failed", "실패"),
    "stage.skipped": ("done earlier", "이전에 완료"),
    "stage.reading": ("Reading the table", "표를 읽는 중"), "stage.loading_model": ("Loading the model",
                                                                                 "모델을 불러오는 중"),
    "stage.mining": ("Mining hard negatives", "하드 네거티브 마이닝 중"),
    "stage.counting tokens": ("Counting tokens", "토큰 수 세는 중"), "stage.writing": ("Writing", "쓰는 중"),
    # eval tab messages
    "eval.choose": ("Choose a model and a pairs file.", "모델과 pairs 파일을 고르세요."),
    "eval.done": ("{queries} queries, {corpus} corpus texts, {seconds:.1f} s",
                  "질의 {queries}개, 코퍼스 텍스트 {corpus}개, {seconds:.1f}초"),
    "eval.few": ("Only {n} queries: with fewer than {min} a change of one query moves recall by {step:.0%}, so "
                 "these numbers cannot show a real difference. Use a larger eval split (Data tab) or an eval file "
                 "with a few hundred pairs.",
                 "질의가 {n}개뿐입니다. {min}개 미만이면 질의 하나가 recall을 {step:.0%}씩 바꾸므로 실제 차이를 "
                 "보여줄 수 없습니다. 평가 분할을 늘리거나(데이터 탭) 수백 개 쌍의 평가 파일을 쓰세요."),
    "eval.memorised": ("These are rows the run trained on: the score measures memorisation, not how well the "
                       "model generalises. Evaluate on the held-out split (eval_pairs.jsonl) or an eval file.",
                       "이 행들은 학습에 쓰인 데이터입니다. 점수는 일반화가 아니라 암기를 측정합니다. "
                       "보류된 분할(eval_pairs.jsonl)이나 평가 파일로 평가하세요."),
    "eval.held_out": ("Held-out rows of the run (not trained on).", "학습에 쓰지 않은 보류 행입니다."),
    "eval.saved": ("Saved with the run as evaluation.json (the model card uses it).",
                   "결과를 학습 폴더의 evaluation.json에 저장했습니다(모델 카드에 사용)."),
    "search.no_corpus": ("Choose a corpus (training pairs or an uploaded file).",
                         "코퍼스를 고르세요(학습 쌍 또는 업로드한 파일)."),
    "config.model_prompts": ("The model declares its own prompts, used in training, evaluation and search unless "
                             "set here: {prompts}.",
                             "모델이 자체 프롬프트를 지정합니다. 여기서 정하지 않으면 "
                             "학습·평가·검색에 쓰입니다: {prompts}."),
    "config.prompt_query": ("query", "쿼리"),
    "config.prompt_document": ("document", "문서"),
    "search.bad_dim": ("Embedding size: {value} is not a whole number above 0; leave it empty for the full size.",
                       "임베딩 차원: {value}은(는) 0보다 큰 정수가 아닙니다. 전체 차원은 비워 두세요."),
    "search.dim_info": ("Empty = full size; a Matryoshka size the model was trained for (e.g. 64): smaller, faster.",
                        "비우면 전체 차원. 모델이 학습한 마트료시카 차원(예: 64)은 더 작고 빠릅니다."),
    "search.corpus_info": ("Default: the training pairs and the run's held-out texts.",
                           "기본값: 학습 쌍과 학습에서 보류한 텍스트."),
}

# Short word labels of the config fields (the key is shown small, in the help line).
FIELD_LABELS: dict[str, tuple[str, str]] = {
    "model_id": ("Model", "모델"),
    "tokenizer_id": ("Tokenizer", "토크나이저"),
    "device": ("Device", "장치"),
    "dtype": ("Precision", "정밀도"),
    "seed": ("Random seed", "랜덤 시드"),
    "pooling": ("Pooling", "풀링"),
    "normalize": ("Normalise embeddings", "임베딩 정규화"),
    "train.batch_size": ("Batch size", "배치 크기"),
    "train.epochs": ("Epochs", "에폭 수"),
    "train.max_length": ("Max tokens per text", "텍스트당 최대 토큰"),
    "train.grad_accum_steps": ("Gradient accumulation", "그래디언트 누적"),
    "train.steps_per_epoch": ("Steps per epoch", "에폭당 스텝 수"),
    "train.grad_checkpointing": ("Gradient checkpointing", "그래디언트 체크포인팅"),
    "train.num_workers": ("Data workers", "데이터 워커 수"),
    "train.pad_to_multiple_of": ("Pad to a multiple of", "패딩 배수"),
    "train.temperature": ("Temperature", "온도"),
    "train.learn_temperature": ("Learn the temperature", "온도 학습"),
    "train.dropout": ("Dropout", "드롭아웃"),
    "train.attention_dropout": ("Attention dropout", "어텐션 드롭아웃"),
    "train.log_every": ("Log every (steps)", "로그 간격(스텝)"),
    "train.eval_every": ("Evaluate every (steps)", "평가 간격(스텝)"),
    "train.max_minutes": ("Time budget (minutes)", "시간 예산(분)"),
    "data.mine_hard_negatives": ("Mine hard negatives", "하드 네거티브 마이닝"),
    "train.early_stopping_patience": ("Early stopping (evaluations)", "조기 종료(평가 횟수)"),
    "train.save_every": ("Snapshot every (steps)", "스냅샷 간격(스텝)"),
    "train.lora": ("LoRA (JSON)", "LoRA(JSON)"),
    "train.matryoshka_dims": ("Matryoshka sizes", "마트료시카 차원"),
    "train.symmetric": ("Symmetric loss", "대칭 손실"),
    "train.group_by_length": ("Group by length", "길이별 배치"),
    "train.similar_batches": ("Batches of similar rows", "비슷한 행끼리 배치"),
    "train.gradcache_chunk": ("Gradient cache chunk", "그래디언트 캐시 청크"),
    "train.gather_negatives": ("Negatives from all GPUs", "모든 GPU의 네거티브 사용"),
    "train.resume": ("Resume", "이어서 학습"),
    "optim.name": ("Optimizer", "옵티마이저"),
    "optim.lr": ("Learning rate", "학습률"),
    "optim.short_run_steps": ("Short-run threshold (steps)", "짧은 학습 기준(스텝)"),
    "optim.weight_decay": ("Weight decay", "가중치 감쇠"),
    "optim.warmup_ratio": ("Warm-up share", "워밍업 비율"),
    "optim.scheduler": ("LR schedule", "학습률 스케줄"),
    "optim.max_grad_norm": ("Gradient clipping", "그래디언트 클리핑"),
    "data.pairs_path": ("Training pairs file", "학습 pairs 파일"),
    "data.stream": ("Stream the file", "스트리밍"),
    "data.eval_path": ("Eval pairs file", "평가 pairs 파일"),
    "data.eval_split": ("Eval split", "평가 분할 비율"),
    "data.skip_invalid": ("Skip invalid lines", "잘못된 줄 건너뛰기"),
    "data.shuffle": ("Shuffle", "섞기"),
    "data.shuffle_buffer": ("Shuffle buffer (rows)", "섞기 버퍼(행)"),
    "data.max_hard_negatives": ("Max hard negatives per row", "행당 최대 하드 네거티브"),
    "data.query_prompt": ("Query prompt", "쿼리 프롬프트"),
    "data.document_prompt": ("Document prompt", "문서 프롬프트"),
    "output.save_dir": ("Runs folder", "결과 폴더"),
    "output.save_name": ("Run name", "학습 이름"),
    "output.save_metrics": ("Save metrics", "지표 저장"),
    "output.keep_snapshots": ("Snapshots kept", "보관 스냅샷 수"),
    "output.keep_best": ("Keep the best model", "최고 모델 보관"),
    "output.best_metric": ("Best by metric", "최고 기준 지표"),
    "hf.trust_remote_code": ("Trust remote code", "원격 코드 신뢰"),
    "hf.local_files_only": ("Offline only", "오프라인 전용"),
    "hf.default_task": ("Default task", "기본 작업"),
    "hf.loader": ("Loader", "로더"),
    "hf.revision": ("Revision", "리비전"),
}


# Help under each config field: field path -> (English, 한국어).
FIELD_HELP: dict[str, tuple[str, str]] = {
    "model_id": ("Hugging Face model id or local folder; the default MiniLM works offline.",
                 "Hugging Face 모델 ID 또는 로컬 폴더. 기본 MiniLM은 오프라인으로 동작합니다."),
    "tokenizer_id": ("A different tokenizer; empty = the model's own.", "별도 토크나이저. 비우면 모델의 것을 사용."),
    "device": ("auto: CUDA, then Apple MPS, then CPU.", "auto: CUDA → Apple MPS → CPU 순으로 선택."),
    "dtype": ("auto: bf16/fp16 on GPUs, fp16 on MPS, bf16 on CPUs that run it natively, else fp32.",
              "auto: GPU는 bf16/fp16, MPS는 fp16, CPU는 bf16 지원 시 bf16, 아니면 fp32."),
    "seed": ("Same seed, same run (shuffling, dropout, split).", "같은 시드면 같은 학습(셔플, 드롭아웃, 분할)."),
    "pooling": ("auto follows the model (its saved pooling; decoders: last token); or mean, cls (first token), "
                "last.", "auto는 모델을 따름(저장된 풀링, 디코더는 마지막 토큰). 또는 mean, cls(첫 토큰), last."),
    "normalize": ("L2-normalise embeddings (cosine similarity); auto follows the model.",
                  "임베딩 L2 정규화(코사인 유사도). auto는 모델을 따름."),
    "train.batch_size": ("Rows per batch; the other rows are in-batch negatives, so bigger trains better.",
                         "배치당 행 수. 다른 행이 인배치 네거티브가 되므로 클수록 유리."),
    "train.epochs": ("Passes over the data.", "데이터 반복 횟수."),
    "train.max_length": ("Tokens kept per text.", "텍스트당 최대 토큰 수."),
    "train.grad_accum_steps": ("Batches per optimizer step (saves memory).",
                               "옵티마이저 스텝당 배치 수(메모리 절약)."),
    "train.steps_per_epoch": ("Fixed steps per epoch; empty = one pass over the data.",
                              "에폭당 고정 스텝 수. 비우면 데이터 1회 순회."),
    "train.grad_checkpointing": ("Less memory, about 30% slower.", "메모리 절약, 약 30% 느려짐."),
    "train.num_workers": ("DataLoader worker processes for tokenizing.", "토크나이즈용 DataLoader 워커 수."),
    "train.pad_to_multiple_of": ("Pad batches to a multiple of this (8 helps GPUs); empty = exact.",
                                 "패딩 길이를 이 값의 배수로(GPU는 8 권장). 비우면 그대로."),
    "train.learn_temperature": ("Also train the temperature, from the value above, kept in 0.01-1; logged as "
                                "temperature.", "온도도 학습합니다(위 값에서 시작, 0.01~1 유지). 로그에 "
                                "temperature로 표시됩니다."),
    "train.temperature": ("logits = cosine / temperature; raise to 0.1-0.2 if the loss goes NaN.",
                          "logits = 코사인 / 온도. loss가 NaN이면 0.1~0.2로 높이세요."),
    "train.dropout": ("Dropout while training: 0 = off (faster); empty = off on a CPU (steps up to 1.7x faster), "
                      "the model's own elsewhere (0.1 for BERT).",
                      "학습 중 드롭아웃: 0은 끔(더 빠름). 비우면 CPU에서는 끔(스텝이 최대 1.7배 빠름), "
                      "그 외에는 모델 기본값(BERT는 0.1)."),
    "train.attention_dropout": ("Dropout on attention weights alone; empty = the dropout above. A number keeps the "
                                "model's other dropout.",
                                "어텐션 가중치에만 거는 드롭아웃. 비우면 위의 드롭아웃을 따릅니다. 숫자를 넣으면 "
                                "모델의 다른 드롭아웃은 그대로 둡니다."),
    "train.log_every": ("Steps between chart points.", "차트 점 사이 스텝 수."),
    "train.eval_every": ("Evaluate every N steps when eval data is set; 0 = at the end.",
                         "평가 데이터가 있을 때 N 스텝마다 평가. 0이면 마지막에만."),
    "train.save_every": ("Resumable snapshot every N steps; 0 = only at stop/end.",
                         "N 스텝마다 재개용 스냅샷. 0이면 중지/종료 시에만."),
    "train.lora": ('Train a small adapter only, e.g. {"r": 8, "alpha": 16}; {} = defaults; empty = full training.',
                   '작은 어댑터만 학습. 예: {"r": 8, "alpha": 16}. {}는 기본값, 비우면 전체 학습.'),
    "train.matryoshka_dims": ("Also train truncated sizes, e.g. [256, 128, 64]; empty = off.",
                              "잘라낸 차원도 학습. 예: [256, 128, 64]. 비우면 사용 안 함."),
    "train.symmetric": ("Also score documents against queries (both directions averaged).",
                        "문서→쿼리 방향도 학습(양방향 평균)."),
    "train.group_by_length": ("Batches of similar length (less padding, faster); content stays random.",
                              "비슷한 길이끼리 배치(패딩 감소, 더 빠름). 내용은 무작위 유지."),
    "train.similar_batches": ("Batches of rows sharing rare words: harder in-batch negatives at no extra cost.",
                              "드문 단어를 공유하는 행끼리 배치: 추가 비용 없이 더 어려운 배치 내 네거티브."),
    "train.gradcache_chunk": ("Embed the batch in chunks of this many rows: large batches in little memory. "
                              "Empty = automatic, 0 = off.",
                              "배치를 이 행 수 단위로 임베딩: 적은 메모리로 큰 배치. 비우면 자동, 0은 끔."),
    "data.mine_hard_negatives": ("When the data has no hard negatives: mine this many per row with the model "
                                 "before training (cached beside the data). 1 by default (the best measured); "
                                 "empty or 0 = no.",
                                 "데이터에 하드 네거티브가 없을 때: 학습 전에 모델로 행마다 이만큼 마이닝"
                                 "(데이터 옆에 캐시). 기본값 1(측정상 가장 좋음); 비우거나 0이면 안 함."),
    "train.max_minutes": ("Train for this many minutes: the steps and the schedule are planned to end, evaluated and "
                          "saved, in time. Empty = by epochs.",
                          "이 시간(분) 동안 학습: 시간 안에 평가·저장까지 끝나도록 스텝과 스케줄을 계획. "
                          "비우면 에폭 기준."),
    "train.early_stopping_patience": ("Stop when the best metric has not improved for this many evaluations. "
                                      "Empty = never.",
                                      "최고 지표가 이 횟수만큼 연속으로 나아지지 않으면 멈춤. 비우면 사용 안 함."),
    "train.gather_negatives": ("With several GPUs: score against every GPU's batch (a larger contrastive batch). "
                               "Empty = on.",
                               "GPU가 여러 개일 때: 모든 GPU의 배치와 비교(더 큰 대조 배치). 비우면 켬."),
    "train.resume": ("Continue from the latest snapshot (command line: --resume; the app: the Resume buttons).",
                     "최근 스냅샷에서 이어서 학습(명령줄: --resume, 앱: 이어서 학습 버튼)."),
    "optim.name": ("Optimizer.", "옵티마이저."),
    "optim.lr": ("Peak learning rate (1e-5 to 1e-4 is typical).", "최대 학습률(보통 1e-5~1e-4)."),
    "optim.short_run_steps": ("A run planned for fewer steps trains at a raised peak rate (up to 2 x the learning "
                              "rate; the log says it); empty or 0 = always the learning rate.",
                              "계획된 스텝 수가 이보다 적으면 최대 학습률을 올려 학습합니다(학습률의 2배까지, 로그에 "
                              "표시). 비우거나 0이면 항상 설정한 학습률."),
    "optim.weight_decay": ("Decoupled weight decay.", "가중치 감쇠."),
    "optim.warmup_ratio": ("Share of steps warming the learning rate up.", "학습률 워밍업 비율."),
    "optim.scheduler": ("Learning-rate decay after warmup.", "워밍업 후 학습률 감소 방식."),
    "optim.max_grad_norm": ("Gradient clipping; empty = none.", "그래디언트 클리핑. 비우면 사용 안 함."),
    "data.pairs_path": ("Training pairs.jsonl (the Data tab fills this in).",
                        "학습용 pairs.jsonl(데이터 탭에서 채워짐)."),
    "data.stream": ("Read line by line: flat memory for huge files.", "한 줄씩 읽기: 큰 파일도 메모리 일정."),
    "data.eval_path": ("Pairs to evaluate on during training.", "학습 중 평가할 pairs 파일."),
    "data.eval_split": ("Hold out this share of anchors when no eval file is set.",
                        "평가 파일이 없을 때 이 비율의 앵커를 평가용으로 분리."),
    "data.skip_invalid": ("Skip bad lines instead of stopping.", "잘못된 줄을 멈추지 않고 건너뜀."),
    "data.shuffle": ("Shuffle each pass.", "매 순회마다 섞기."),
    "data.shuffle_buffer": ("Rows buffered to shuffle a streamed file.", "스트리밍 시 섞기 버퍼 행 수."),
    "data.query_prompt": ('Put in front of every query, e.g. "query: " (e5); empty = the model\'s own.',
                          '모든 쿼리 앞에 붙임. 예: "query: "(e5). 비우면 모델의 것.'),
    "data.document_prompt": ('Put in front of every document, e.g. "passage: " (e5); empty = the model\'s own.',
                             '모든 문서 앞에 붙임. 예: "passage: "(e5). 비우면 모델의 것.'),
    "data.max_hard_negatives": ("Use at most this many hard negatives per row; empty = all.",
                                "행당 최대 하드 네거티브 수. 비우면 전부."),
    "output.save_dir": ("Folder for runs (the app keeps every run in its workspace's runs folder).",
                        "학습 결과 폴더(앱은 모든 학습을 작업 공간의 runs 폴더에 보관)."),
    "output.save_name": ("Run folder for the command line; the app names each run by its time and model.",
                         "명령줄 학습의 폴더 이름. 앱은 학습마다 시간과 모델로 이름을 붙입니다."),
    "output.save_metrics": ("Write metrics.jsonl and a summary.", "metrics.jsonl과 요약 저장."),
    "output.keep_snapshots": ("Snapshots kept on disk.", "디스크에 보관할 스냅샷 수."),
    "output.keep_best": ("Keep the best model by output.best_metric (needs eval data).",
                         "output.best_metric(최고 기준 지표) 기준 최고 모델 보관(평가 데이터 필요)."),
    "output.best_metric": ("Metric for keep_best.", "keep_best 기준 지표."),
    "hf.trust_remote_code": ("Run the model repository's own code; only for models you trust.",
                             "모델 저장소의 코드를 실행. 신뢰하는 모델에만 사용."),
    "hf.local_files_only": ("Never contact the hub.", "허브에 접속하지 않음."),
    "hf.default_task": ("For wrappers with default_task (e.g. classification for Jina v3).",
                        "default_task를 쓰는 래퍼용(Jina v3는 classification)."),
    "hf.loader": ("automodel, or sentence_transformer for ST-only models.",
                  "automodel, 또는 ST 전용 모델이면 sentence_transformer."),
    "hf.revision": ("Hub branch, tag or commit.", "허브 브랜치, 태그 또는 커밋."),
}


def t(lang: str, key: str, **values: Any) -> str:
    """Text for a key in 'en' or 'ko' (falls back to English, then to the key itself), formatted with values."""
    pair = TEXT.get(key) or FIELD_HELP.get(key)
    text = key if pair is None else pair[1] if lang == "ko" else pair[0]
    return text.format(**values) if values else text


def has_text(key: str) -> bool:
    """Whether a key has both an English and a Korean text."""
    pair = TEXT.get(key) or FIELD_HELP.get(key) or FIELD_LABELS.get(key)
    return bool(pair and pair[0] and pair[1])


def field_label(lang: str, path: str) -> str:
    pair = FIELD_LABELS.get(path, (path, path))
    return pair[1] if lang == "ko" else pair[0]


def field_info(lang: str, path: str) -> str:
    """The help line under a config field: the config key, small, then what it does."""
    return f"{path} · {t(lang, path)}"


Text = str | Callable[[str], str]  # a TEXT key, or a function of the language


class Texts:
    """Every translatable component with its key(s): the language switch walks this registry."""

    def __init__(self, lang: str = "en"):
        self.lang = lang
        self.entries: list[tuple[Any, str, Text]] = []

    def add(self, component: Any, key: Text, attr: str = "label") -> Any:
        """Register an existing component's attr (label, value, info, placeholder) under a key."""
        self.entries.append((component, attr, key))
        return component

    def make(self, cls: type, key: Text, attr: str = "label", **kwargs: Any) -> Any:
        """Create a component with attr set to the key's text in the current language, and register it."""
        component = cls(**{attr: self.text(self.lang, key)}, **kwargs)
        return self.add(component, key, attr)

    @staticmethod
    def text(lang: str, key: Text) -> str:
        return key(lang) if callable(key) else t(lang, key)

    @property
    def components(self) -> list[Any]:
        return list(dict.fromkeys(c for c, _, _ in self.entries))

    def updates(self, lang: str) -> dict[Any, Any]:
        """{component: gr.update(...)} with every registered text in lang."""
        attrs: dict[Any, dict[str, str]] = {}
        for component, attr, key in self.entries:
            attrs.setdefault(component, {})[attr] = self.text(lang, key)
        return {c: gr.update(**a) for c, a in attrs.items()}

    def missing(self) -> list[str]:
        """Registered keys without both an English and a Korean text (callables are checked by calling them)."""
        out = []
        for _, attr, key in self.entries:
            if callable(key):
                if not (key("en") and key("ko")):
                    out.append(f"{attr}:<function>")
            elif not has_text(key):
                out.append(key)
        return out
