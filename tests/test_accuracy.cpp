// Tests of metrics/accuracy.hpp.
#include <bnorm/metrics/accuracy.hpp>

#include <doctest/doctest.h>

TEST_CASE("count_correct takes the row of each column's largest score") {
  bnorm::Matrix<float> scores(3, 4);
  scores << 0.1f, 2.0f, -1.0f, 5.0f,  //
      0.7f, 1.0f, -3.0f, 5.0f,        //
      0.2f, 0.0f, -2.0f, 1.0f;
  // Predictions: 1, 0, 0, 0 (a tie goes to the first row, as torch.argmax).
  const bnorm::Labels labels = (bnorm::Labels(4) << 1, 0, 2, 0).finished();
  CHECK(bnorm::count_correct(scores, labels) == 3);
  CHECK(bnorm::accuracy(scores, labels) == 0.75);
  CHECK(bnorm::count_correct(scores.middleCols(1, 2), labels.segment(1, 2)) == 1);
}

TEST_CASE("count_correct wants one label per column") {
  const bnorm::Matrix<double> scores = bnorm::Matrix<double>::Zero(10, 3);
  CHECK_THROWS_WITH_AS(bnorm::count_correct(scores, bnorm::Labels::Zero(2)),
                       doctest::Contains("2 labels for 10 x 3 scores"), bnorm::Error);
}

TEST_CASE("the accuracy of an empty batch is 0") {
  CHECK(bnorm::accuracy(bnorm::Matrix<float>(10, 0), bnorm::Labels(0)) == 0.0);
}

TEST_CASE("a column with a NaN or an infinity counts as wrong") {
  bnorm::Matrix<double> scores(2, 3);
  scores << 1.0, std::nan(""), 0.0,  //
      0.0, 0.0, std::numeric_limits<double>::infinity();
  const bnorm::Labels labels = (bnorm::Labels(3) << 0, 1, 1).finished();
  CHECK(bnorm::count_correct(scores, labels) == 1);
}
