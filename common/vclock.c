#include "vclock.h"
