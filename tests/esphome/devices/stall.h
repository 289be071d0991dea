#pragma once
// Blocks the caller (ESPHome's main loop) while the file named by STALL_FILE exists.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

inline void stall_while_file_exists() {
  const char *path = std::getenv("STALL_FILE");
  if (path == nullptr || access(path, F_OK) != 0)
    return;
  std::string entered = std::string(path) + ".entered";
  if (FILE *f = std::fopen(entered.c_str(), "w"))
    std::fclose(f);
  while (access(path, F_OK) == 0)
    usleep(10000);
}
