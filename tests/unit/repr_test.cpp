#include "client/repr.h"

#include <gtest/gtest.h>

using eco::client::python_bytes_repr;

TEST(PythonBytesRepr, TutorialMessage) {
  EXPECT_EQ(python_bytes_repr("Hello world! This is an echo server made with python."),
            "b'Hello world! This is an echo server made with python.'");
}

TEST(PythonBytesRepr, EscapesLikePython) {
  EXPECT_EQ(python_bytes_repr(std::string("a\0\xff\n\t\r\\", 7)), "b'a\\x00\\xff\\n\\t\\r\\\\'");
  EXPECT_EQ(python_bytes_repr("it's"), "b\"it's\"");
  EXPECT_EQ(python_bytes_repr("'\""), "b'\\'\"'");
  EXPECT_EQ(python_bytes_repr(""), "b''");
}
