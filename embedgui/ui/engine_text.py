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
}
_ENGINE_KO: list[tuple[re.Pattern, Callable[[re.Match], str]]] = [
    (re.compile(r"^(?P<f>[\w.]+): null is not allowed; give a (?P<k>.+?)\.$"),
     lambda m: f"{m['f']}: 비워 둘 수 없습니다 ({m['k']})."),
    (re.compile(r"^(?P<f>[\w.]+): (?P<v>.+?) is not allowed; (?P<h>.+?)\.?$", re.S),
     lambda m: f"{m['f']}: {m['v']} 값은 쓸 수 없습니다. {_HINTS_KO.get(m['h'], m['h'])}."),
    (re.compile(r"^(?P<f>[\w.]+): unknown key; did you mean '(?P<k>[^']+)'\?$"),
     lambda m: f"{m['f']}: 알 수 없는 키입니다. '{m['k']}'을(를) 뜻했나요?"),
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
    (re.compile(r"^the host (?P<h>\S+) resolves to the non-public address (?P<a>.+), which a hosted crawler must not "
                r"contact$"),
     lambda m: f"호스트 {m['h']}의 주소 {m['a']}은(는) 공개 주소가 아니어서 공유 앱의 크롤러는 접속하지 않습니다"),
    (re.compile(r"^cannot read the file \((?P<e>.+)\); check the path$"),
     lambda m: f"파일을 읽을 수 없습니다 ({m['e']}). 경로를 확인하세요"),
    (re.compile(r"^more than (?P<n>\d+) redirects; use the page's final URL instead$"),
     lambda m: f"리디렉션이 {m['n']}번을 넘었습니다. 페이지의 최종 URL을 쓰세요"),
    # an uploaded table the reader cannot use (the Data tab's message)
    (re.compile(r"^(?P<n>.+?): (?:is empty|has no rows); it needs rows of (?P<w>anchor and positive text|text)\.$"),
     lambda m: f"{m['n']}: 행이 없습니다. "
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


def engine_text(text: str, lang: str) -> str:
    """An engine sentence in the page's language: Korean where a pattern above knows it, else as it is."""
    if lang != "ko":
        return text
    for pattern, korean in _ENGINE_KO:
        if m := pattern.match(text.strip()):
            return korean(m)
    return text
