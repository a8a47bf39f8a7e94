#include "tm_profile.h"
