using System.Numerics;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace FastAttention.Tests.Validation;

/// <summary>The buffer length a layout needs, against exact integer arithmetic, up to and past int.MaxValue elements.</summary>
public class LayoutLengthTests
{
    private static readonly Gen<long> Strides = Gen.OneOf(
        Gen.Choose(0, 5000).Select(x => (long)x),
        Gen.Choose(0, int.MaxValue).Select(x => (long)x),
        Gen.Elements(int.MaxValue - 1L, int.MaxValue, int.MaxValue + 1L, 1L << 40, long.MaxValue / 3, long.MaxValue));

    [Property(MaxTest = 2000)]
    public Property RequiredLength_EqualsExactArithmetic() =>
        Prop.ForAll((from batch in Gen.Choose(0, 70000)
                     from heads in Gen.Choose(0, 70000)
                     from rows in Gen.Choose(0, 70000)
                     from columns in Gen.Choose(0, 70000)
                     from batchStride in Strides
                     from headStride in Strides
                     from rowStride in Strides
                     from offset in Strides
                     select (batch, heads, rows, columns, new TensorLayout(batchStride, headStride, rowStride, offset))).ToArbitrary(), t =>
        {
            var (batch, heads, rows, columns, layout) = t;
            BigInteger last = layout.Offset + (BigInteger)(batch - 1) * layout.BatchStride + (BigInteger)(heads - 1) * layout.HeadStride
                + (BigInteger)(rows - 1) * layout.RowStride + (columns - 1);
            long expected = batch == 0 || heads == 0 || rows == 0 || columns == 0 ? 0 : last >= int.MaxValue ? -1 : (long)last + 1;
            Assert.Equal(expected, layout.RequiredLength(batch, heads, rows, columns));
        });

    [Fact]
    public void Shape_AtTheLimit_AcceptedAndPastIt_Rejected()
    {
        var dense = TensorLayout.Bhsd(1, 1, 4);
        var last = new TensorLayout(1, 1, 1, int.MaxValue - 1L); // one element at index int.MaxValue − 1
        Assert.Equal(int.MaxValue, new AttentionShape(1, 1, 1, 1, 1, 1, 4, last, TensorLayout.Bhsd(1, 1, 1), dense, dense).QueryLength);
        var past = new TensorLayout(1, 1, 1, int.MaxValue);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new AttentionShape(1, 1, 1, 1, 1, 1, 4, past, TensorLayout.Bhsd(1, 1, 1), dense, dense));
        Assert.Equal("batch", e.ParamName);
        var wraps = new TensorLayout(1, 1, long.MaxValue / 2); // (rows − 1)·stride overflows a long for 3 rows
        Assert.Throws<ArgumentOutOfRangeException>(() => new AttentionShape(1, 1, 1, 3, 3, 1, 1, wraps, dense, dense, dense));
    }
}
