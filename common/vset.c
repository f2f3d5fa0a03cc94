#include "vset.h"
