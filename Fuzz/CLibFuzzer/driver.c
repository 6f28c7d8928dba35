// CLibFuzzer only declares libFuzzer's driver (include/CLibFuzzer.h); a C target needs a source file.
#include "CLibFuzzer.h"
